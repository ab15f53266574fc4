"""The only way cases touch a driver: every call is timed and traced, every created path journalled.

The journal (one JSON line per event, flushed as it happens) lets cleanup delete exactly what
a run created, also after a crash (``gspc clean --run-id``), and never anything outside the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conformance import errors
from conformance.driver import OBJECT_OPERATIONS, Object
from conformance.engine.interrupts import propagates

CREATING = frozenset({"write", "create_append", "write_append"})
LIST_LIMIT = 10_000  # a list that yields more than this is cut, so a runaway iterator cannot hang a case


class OutsideRun(Exception):
    """A step addressed a path outside the case's scratch prefix: a harness bug, never sent."""


class Ledger:
    """An append-only journal of the paths a run created and removed, per target."""

    def __init__(self, path: Path, run_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.run_id = run_id
        self._file = path.open("a", encoding="utf-8")

    def log(self, event: str, target: str, path: str, **extra: Any) -> None:
        entry = {"event": event, "run_id": self.run_id, "target": target, "path": path, **extra}
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def journal(folder: Path, run_id: str) -> Iterator[dict[str, Any]]:
    """Every entry of a run's journals; a line torn by a crash is skipped."""
    for path in sorted(folder.glob(f"{run_id}-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def leftovers(folder: Path, run_id: str) -> dict[str, list[str]]:
    """Paths a run created and did not remove, per target, from its journals (in any order)."""
    created: dict[str, dict[str, None]] = {}
    removed: set[tuple[str, str]] = set()
    for entry in journal(folder, run_id):
        if entry["event"] == "created":
            created.setdefault(entry["target"], {})[entry["path"]] = None
        elif entry["event"] == "removed":
            removed.add((entry["target"], entry["path"]))
    alive = {t: [p for p in paths if (t, p) not in removed] for t, paths in created.items()}
    return {t: paths for t, paths in alive.items() if paths}


def target_options(folder: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """The options each target of a run was opened with, so cleanup can open it the same way."""
    return {e["target"]: e.get("options", {}) for e in journal(folder, run_id) if e["event"] == "open"}


class Tracker:
    """Wraps one driver for one case: guards the prefix, journals creations, cleans up exactly."""

    def __init__(self, driver: Any, target: str, prefix: str, ledger: Ledger) -> None:
        self.driver = driver
        self.target = target
        self.prefix = prefix
        self.ledger = ledger
        self.created: dict[str, None] = {}

    def call(self, op: str, target_path: str | None, args: dict[str, Any]) -> tuple[Any, BaseException | None]:
        """Run one operation; return (result, None) or (None, the exception it raised)."""
        if target_path is not None and not target_path.startswith(self.prefix):
            raise OutsideRun(f"{op} on {target_path!r} is outside the case prefix {self.prefix!r}")
        if op in CREATING and target_path is not None and target_path not in self.created:
            self.created[target_path] = None
            self.ledger.log("created", self.target, target_path)
        method = getattr(self.driver, op, None)
        if method is None:  # an operation the driver's class does not have at all
            path = None if op in OBJECT_OPERATIONS else target_path
            return None, errors.NotImplemented(f"operation {op}: not implemented", op=op, path=path)
        try:
            result = method(**args)
            if op == "list":
                result = _take(result)
            return result, None
        except BaseException as exc:  # anything a driver raises is data (SystemExit too), but a deadline or Ctrl-C
            if propagates(exc):
                raise
            return None, exc

    def cleanup(self) -> list[str]:
        """Delete what the case created; return the paths that could not be deleted."""
        left = []
        for path in reversed(self.created):
            try:
                self.driver.delete(path)
            except Exception:
                left.append(path)
                continue
            self.ledger.log("removed", self.target, path)
        return left


def _take(objects: Any) -> list[Object]:
    found = []
    for obj in objects:
        found.append(obj)
        if len(found) >= LIST_LIMIT:
            break
    return found
