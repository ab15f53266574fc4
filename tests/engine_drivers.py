"""Drivers that misbehave towards the harness itself: hang, leak secrets, lack methods, declare nonsense."""

from __future__ import annotations

import os
import time
from typing import Any

from conformance.adapters.fs import FsDriver
from conformance.adapters.memory import MemoryDriver

from conformance import errors
from conformance.driver import BaseDriver, Capabilities, Object


class MissingWrite(BaseDriver):
    """Declares write but never defines it."""

    name = "missing-write"

    def capabilities(self) -> Capabilities:
        return Capabilities(operations={"write", "delete"})

    def delete(self, path: str, **pairs: Any) -> None:
        return None


class UnknownPair(MemoryDriver):
    """Declares a pair the interface does not know."""

    name = "unknown-pair"

    def capabilities(self) -> Capabilities:
        return Capabilities(operations={"write"}, pairs={"write": {"colour"}})


class DeleteMissingFails(MemoryDriver):
    """Raises ObjectNotExist when deleting a missing path (breaks GSP-46)."""

    name = "delete-missing-fails"

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        self.stat(path)
        super().delete(path)


class HangingStat(MemoryDriver):
    """stat never returns within a test's patience."""

    name = "hanging-stat"

    def stat(self, path: str, **pairs: Any) -> Object:
        time.sleep(30)
        return super().stat(path, **pairs)


class LeakyErrors(MemoryDriver):
    """Puts the service token into every not-found message, as careless SDK wrappers do."""

    name = "leaky-errors"

    def stat(self, path: str, **pairs: Any) -> Object:
        try:
            return super().stat(path, **pairs)
        except errors.ObjectNotExist as exc:
            raise errors.ObjectNotExist(f"lookup with token {os.environ['GSPC_TEST_TOKEN']} failed", op="stat") from exc


class FsStatNoSize(FsDriver):
    """An fs driver whose stat loses the size: fails clauses, so cleanup after failures is visible."""

    name = "fs-stat-no-size"

    def stat(self, path: str, **pairs: Any) -> Object:
        obj = super().stat(path, **pairs)
        obj.size = None
        return obj


class CrashingStat(MemoryDriver):
    """Kills its own process on one stat, as a segfaulting native SDK would."""

    name = "crashing-stat"

    def stat(self, path: str, **pairs: Any) -> Object:
        if path.endswith("/delete-existing/0/object"):
            os._exit(13)
        return super().stat(path, **pairs)


class BrokenInit(MemoryDriver):
    """Cannot start: its constructor raises."""

    def __init__(self) -> None:
        raise RuntimeError("backend refused the handshake")


class CapsRaise(MemoryDriver):
    """capabilities() raises instead of declaring."""

    def capabilities(self) -> Capabilities:
        raise KeyError("capabilities")


class SlowOpen(MemoryDriver):
    """Its constructor never returns within a run's patience."""

    def __init__(self) -> None:
        time.sleep(30)
        super().__init__()


class HangingEverything(MemoryDriver):
    """stat and delete hang: a timed-out case must not hang again in its cleanup."""

    name = "hanging-everything"

    def stat(self, path: str, **pairs: Any) -> Object:
        time.sleep(30)
        return super().stat(path, **pairs)

    def delete(self, path: str, **pairs: Any) -> None:
        time.sleep(30)
        super().delete(path, **pairs)
