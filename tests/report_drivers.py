"""Drivers for the report tests: one that fails clauses and also breaks the harness, one whose failure
breaks its case's clause and an invariant at once."""

from __future__ import annotations

from typing import Any

from engine_drivers import DeleteMissingFails

from conformance.adapters.memory import MemoryDriver
from conformance.backends import Endpoint


class DownProxy:
    """A fault proxy that cannot be reached: every fault step is a harness error, not a driver failure."""

    def inject(self, kind: str, times: int | None = None, **options: Any) -> None:
        raise ConnectionRefusedError("fault proxy at 127.0.0.1:9 refused the connection")

    def clear(self) -> None:
        return None


class Unreachable:
    """The test backend ``unreachable.down``: nothing to start, and a fault proxy no fault step can reach."""

    service = "unreachable"
    default = True
    per_process = True  # the injector lives in the driver's process

    def __init__(self, location: str | None = None) -> None:
        pass

    def unavailable(self) -> str | None:
        return None

    def start(self, options: dict[str, Any]) -> Endpoint:
        return Endpoint(faults=DownProxy())

    def close(self) -> None:
        return None


class FailsAndBreaks(DeleteMissingFails):
    """Breaks GSP-46 (delete of a missing path raises), bound to ``unreachable.down``: its fault steps break."""

    name = "fails-and-breaks"
    service = "unreachable"


class DeleteMissingRaw(MemoryDriver):
    """Delete of a missing path lets a raw KeyError escape: each such delete fails the case's clause
    (delete.missing-ok expects success) and, as an invariant, errors.taxonomy of another spec."""

    name = "delete-missing-raw"

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        if path not in self._objects:
            raise KeyError(path)
        super().delete(path, **pairs)
