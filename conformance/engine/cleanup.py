"""``gspc clean``: finish a run's cleanup from its journal, inside the run's root and nowhere else.

Every journal line is judged by the tracker's segment rule against ``gspc-<run id>/``; a line
outside it is reported and never deleted. Targets reopen with the journalled options minus the
masked ones (credentials come from the drivers' own chains or ``--option``), and a path counts
as removed only when stat no longer finds it.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from conformance.driver import DriverError
from conformance.engine.interrupts import watch_user_interrupts
from conformance.engine.tracker import Ledger, confined, present, remove
from conformance.outputs import json_lines
from conformance.redact import Redactor
from conformance.targets import Target, TargetUnavailable, open_target

SHOWN = 20  # paths named per list in the report; the counts are always complete
SHOWN_CHARS = 300  # of one refused journal path or line


class Option(NamedTuple):
    """A ``[TARGET:]KEY=VALUE`` driver option given to ``gspc clean``."""

    target: str | None
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Option:
        """Parse ``[TARGET:]KEY=VALUE``; ValueError if it is not that shape."""
        left, sep, value = text.partition("=")
        scope, _, key = left.rpartition(":")
        if not sep or not key.isidentifier():
            raise ValueError(f"{text!r}: expected [TARGET:]KEY=VALUE")
        return cls(scope or None, key, value)


@dataclass
class Plan:
    """What a run's journal asks to clean, per target, and the lines refused."""

    created: dict[str, dict[str, None]] = field(default_factory=dict)
    removed: set[tuple[str, str]] = field(default_factory=set)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def alive(self) -> dict[str, list[str]]:
        """Journalled paths not yet recorded as removed, per target, newest first (children before parents)."""
        found = {t: [p for p in reversed(paths) if (t, p) not in self.removed] for t, paths in self.created.items()}
        return {t: paths for t, paths in found.items() if paths}


def journal(folder: Path, run_id: str) -> Iterator[dict[str, Any]]:
    """Every entry of a run's journal files (``<run id>-<worker>.jsonl``); torn or non-object lines are skipped."""
    for path in sorted(folder.glob(f"{glob.escape(run_id)}-*.jsonl")):
        if "-" in path.stem[len(run_id) + 1 :]:  # another run whose id starts with this one
            continue
        yield from json_lines(path)


def plan(folder: Path, run_id: str, redactor: Redactor) -> Plan:
    """Read a run's journal into a plan, refusing every line that points outside ``gspc-<run id>/``."""
    root = f"gspc-{run_id}/"
    found = Plan()
    for entry in journal(folder, run_id):
        event, target, path = entry.get("event"), entry.get("target"), entry.get("path")
        if not isinstance(target, str) or entry.get("run_id") != run_id:
            line = json.dumps(entry)[:SHOWN_CHARS]
            found.refused.append(f"refused a journal line not of a target of run {run_id}: {line}")
        elif event == "open":
            found.options[target] = _unmasked(entry.get("options"), redactor)
        elif event in ("created", "removed") and (reason := confined(path, root)):
            found.refused.append(f"{target}: refused journal path {repr(path)[:SHOWN_CHARS]}: it {reason}")
        elif event == "created":
            found.created.setdefault(target, {})[path] = None
        elif event == "removed":
            found.removed.add((target, path))
    for target in sorted(set(found.created) - set(found.options)):
        count = len(found.created.pop(target))
        found.refused.append(f"{target}: refused {count} journalled paths of a target the run never opened")
    return found


def clean_run(
    folder: Path,
    run_id: str,
    options: Sequence[Option],
    redactor: Redactor,
    out: Callable[[str], None] = print,
) -> int:
    """Delete what run ``run_id`` journalled and did not remove; 0 if nothing of it remains, else 1 (2: bad id)."""

    def say(line: str) -> None:
        out(redactor.scrub(line))

    if not run_id or "/" in run_id or confined(f"gspc-{run_id}", ""):
        say(f"gspc: --run-id {run_id!r} is not a run id")
        return 2
    watch_user_interrupts()  # a real Ctrl-C stops the clean; whatever else a driver raises, stat judges the path
    found = plan(folder, run_id, redactor)
    for line in found.refused[:SHOWN]:
        say(line)
    if len(found.refused) > SHOWN:
        say(f"... and {len(found.refused) - SHOWN} more refused journal lines")
    alive = found.alive()
    if not alive:
        say(f"run {run_id}: nothing left to clean")
        return 0
    ledger = Ledger(folder / f"{run_id}-clean.jsonl", run_id)
    code = 0
    try:
        for name, paths in alive.items():
            if _clean_target(name, paths, _options(name, found.options, options), redactor, ledger, say):
                code = 1
    finally:
        ledger.close()
    return code


def _clean_target(
    name: str,
    paths: list[str],
    options: dict[str, Any],
    redactor: Redactor,
    ledger: Ledger,
    say: Callable[[str], None],
) -> bool:
    """Remove one target's paths and report; True if any of them remains (or the target cannot open)."""
    redactor.pairs(options)  # learn the secrets of --option values before anything can echo them
    try:
        opened = open_target(Target.parse(name, options))
    except (TargetUnavailable, DriverError) as exc:
        say(f"{name}: cannot clean {len(paths)} paths: {exc}")
        return True
    driver = opened.driver
    removed, absent, remain = [], [], []
    try:
        for path in paths:
            existed = present(driver, path) is not False
            if remove(driver, path):
                ledger.log("removed", name, path)
                (removed if existed else absent).append(path)
            else:
                remain.append(path)
    finally:
        opened.close()
    say(f"{name}: removed {len(removed)}, already gone {len(absent)}, remaining {len(remain)} of {len(paths)}")
    for label, group in (("removed", removed), ("remaining", remain)):
        if group:
            more = f" (and {len(group) - SHOWN} more)" if len(group) > SHOWN else ""
            say(f"{name}: {label}: {', '.join(group[:SHOWN])}{more}")
    return bool(remain)


def _unmasked(options: Any, redactor: Redactor) -> dict[str, Any]:
    """Journalled options fit to reopen with: masked values and secret-named keys dropped, never sent as ``***``."""
    if not isinstance(options, Mapping):
        return {}
    kept = {}
    for key, value in options.items():
        masked = isinstance(value, str) and value != "" and set(value) == {"*"}
        if not masked and redactor.pairs({key: value}).get(key) == value:
            kept[key] = value
    return kept


def _options(name: str, journalled: Mapping[str, dict[str, Any]], given: Sequence[Option]) -> dict[str, Any]:
    """A target's options: journalled ones, overridden by ``--option`` for all targets or for this one."""
    return {**journalled.get(name, {}), **{o.key: o.value for o in given if o.target in (None, name)}}
