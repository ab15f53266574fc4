"""Test backends the run shares between its processes: one slow to start, one that fails to start."""

from __future__ import annotations

import os
import time
from typing import Any

from conformance.adapters.memory import MemoryDriver
from conformance.backends import BackendError, Endpoint


class SlowStart:
    """The test backend ``slow.sleepy``: started once per run, it takes GSPC_TEST_START_SECONDS to come up."""

    service = "slow"
    default = True
    per_process = False

    def __init__(self, location: str | None = None) -> None:
        pass

    def unavailable(self) -> str | None:
        return None

    def start(self, options: dict[str, Any]) -> Endpoint:
        time.sleep(float(os.environ.get("GSPC_TEST_START_SECONDS", "0")))
        return Endpoint(options={"started_by": str(os.getpid())})

    def close(self) -> None:
        return None


class FailingStart(SlowStart):
    """The test backend ``slow.failing``: it fails to start, saying why with the run's token."""

    def start(self, options: dict[str, Any]) -> Endpoint:
        raise BackendError(f"cannot reach the service with {os.environ.get('GSPC_TEST_TOKEN', 'no-token-set')}")


class SlowMemory(MemoryDriver):
    """The memory driver bound to the ``slow`` service: it records which process started its backend."""

    name = "slow-memory"
    service = "slow"

    def __init__(self, started_by: str = "") -> None:
        super().__init__()
        self.started_by = started_by
