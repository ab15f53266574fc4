"""Drivers that fight the harness's supervision: they hang past signals, crash, kill themselves or never let go."""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import threading
import time
from typing import Any

from conformance.adapters.memory import MemoryDriver

from conformance.driver import Object

FOREVER = 3600


def _is_victim(path: str) -> bool:
    return path.endswith("/delete-existing/0/object")


def _hang_deaf() -> None:
    """Sleep with SIGALRM blocked, so no in-process deadline can interrupt it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(FOREVER)


class DeafStat(MemoryDriver):
    """One stat blocks SIGALRM and sleeps: only a watchdog outside the process ends it."""

    def stat(self, path: str, **pairs: Any) -> Object:
        if _is_victim(path):
            _hang_deaf()
        return super().stat(path, **pairs)


class SpinsInC(MemoryDriver):
    """One stat spins in a C loop that never checks for signals, so Python signal handlers never run."""

    def stat(self, path: str, **pairs: Any) -> Object:
        if _is_victim(path):
            sum(itertools.repeat(1, 10**12))
        return super().stat(path, **pairs)


class SegfaultStat(MemoryDriver):
    """One stat dereferences NULL, as a broken native SDK would."""

    def stat(self, path: str, **pairs: Any) -> Object:
        if _is_victim(path):
            ctypes.string_at(0)
        return super().stat(path, **pairs)


class KillsItself(MemoryDriver):
    """One stat sends SIGKILL to its own process."""

    def stat(self, path: str, **pairs: Any) -> Object:
        if _is_victim(path):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().stat(path, **pairs)


class SlowStat(MemoryDriver):
    """One stat takes a few seconds: long enough to kill its process from outside meanwhile."""

    def stat(self, path: str, **pairs: Any) -> Object:
        if _is_victim(path):
            time.sleep(float(os.environ.get("GSPC_TEST_SLOW", "3")))
        return super().stat(path, **pairs)


class DeafClose(MemoryDriver):
    """close() never returns and cannot be interrupted."""

    def close(self) -> None:
        _hang_deaf()


class DeafCheckAccess(MemoryDriver):
    """check_access() never returns and cannot be interrupted."""

    def check_access(self) -> None:
        _hang_deaf()


class LeavesThread(MemoryDriver):
    """Starts a non-daemon thread that never ends, so the process cannot exit by itself."""

    def __init__(self) -> None:
        super().__init__()
        threading.Thread(target=time.sleep, args=(FOREVER,), daemon=False).start()
