"""The only way cases touch a driver: every call is timed and traced, every created path journalled.

The journal (one JSON line per event, flushed as it happens) lets cleanup delete exactly what
a run created, also after a crash (``gspc clean --run-id``), and never anything outside the run.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from conformance import errors
from conformance.driver import OBJECT_OPERATIONS, Object
from conformance.engine.interrupts import CaseTimeout, propagates
from conformance.spec.paths import path_problem

CREATING = frozenset({"write", "create_append", "write_append"})
LIST_LIMIT = 10_000  # a list that yields more than this is cut, so a runaway iterator cannot hang a case


class OutsideRun(Exception):
    """A step addressed a path outside the case's scratch prefix: a harness error, never sent to the driver."""


def confined(path: Any, prefix: str, *, listing: bool = False) -> str | None:
    """Why ``path`` is not a path under ``prefix``, judged by segments (the spec's path rule); None when it is.

    A listing prefix may be the case prefix itself or end with one '/'.
    """
    if not isinstance(path, str):
        return "is not a string"
    head, problem = _head(prefix)
    if problem:  # a prefix that is not confined itself confines nothing
        return f"is under {prefix!r}, which {problem}"
    if not path.startswith(head):
        return f"is not under {head!r}"
    return path_problem(path[len(head) :], prefix=listing)


@lru_cache(maxsize=64)
def _head(prefix: str) -> tuple[str, str | None]:
    """A case prefix as the head of its paths, and why it is not confined itself (once per case, not per call)."""
    head = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    return head, path_problem(head, prefix=True)


def present(driver: Any, path: str) -> bool | None:
    """Whether ``path`` still exists, asked with stat; None when the driver has no stat to ask."""
    stat = getattr(driver, "stat", None)
    if stat is None:
        return None
    try:
        stat(path)
    except errors.ObjectNotExist:
        return False
    except errors.CapabilityInsufficient:
        return None
    except BaseException as exc:  # stat failed otherwise: the path is not known to be gone
        if propagates(exc):
            raise
    return True


def remove(driver: Any, path: str) -> bool:
    """Delete ``path`` and say whether it is gone: stat decides where the driver has it, not delete's word."""
    try:
        driver.delete(path)
        deleted = True
    except BaseException as exc:  # a raising delete may still have removed the object
        if propagates(exc):
            raise
        deleted = False
    there = present(driver, path)
    return deleted if there is None else not there


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


class Tracker:
    """Wraps one driver for one case: confines paths to the prefix, journals creations, cleans up exactly."""

    def __init__(self, driver: Any, target: str, prefix: str, ledger: Ledger) -> None:
        self.driver = driver
        self.target = target
        self.prefix = prefix
        self.ledger = ledger
        self.created: dict[str, None] = {}

    def call(self, op: str, target_path: str | None, args: dict[str, Any]) -> tuple[Any, BaseException | None]:
        """Run one operation; return (result, None) or (None, the exception it raised)."""
        self._confine(op, target_path, args)
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
        """Delete what the case created; return the paths that still exist afterwards (or were not reached)."""
        left: list[str] = []
        pending = list(reversed(self.created))
        for index, path in enumerate(pending):
            try:
                gone = remove(self.driver, path)
            except CaseTimeout:  # a hung delete or stat must not fail the case: the rest stays for `gspc clean`
                return left + pending[index:]
            if gone:
                self.ledger.log("removed", self.target, path)
            else:
                left.append(path)
        return left

    def _confine(self, op: str, target_path: str | None, args: dict[str, Any]) -> None:
        """Refuse the call unless every path it would send lies under the prefix (the args, not only the label)."""
        obj = args.get("obj")
        given = args.get("path")
        addressed = [
            (target_path, op == "list"),
            (None if given is target_path and op != "list" else given, False),  # the same path is judged once
            (args.get("prefix"), True),
            (obj.path if isinstance(obj, Object) else None, False),
        ]
        for path, listing in addressed:
            reason = None if path is None else confined(path, self.prefix, listing=listing)
            if reason:
                raise OutsideRun(f"{op} on {path!r}: the path {reason}; a case stays under {self.prefix!r}")


def _take(objects: Any) -> list[Object]:
    found = []
    for obj in objects:
        found.append(obj)
        if len(found) >= LIST_LIMIT:
            break
    return found
