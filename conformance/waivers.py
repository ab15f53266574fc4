"""Known-issues files: per target, a failure listed with reason and link is waived, not hidden."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from conformance.engine.invariants import CHECKED
from conformance.spec.limits import DEFAULT_LIMITS, SpecLimits
from conformance.spec.loader import SpecError, read_yaml
from conformance.spec.model import Case, Spec


@dataclass(frozen=True)
class Waiver:
    """One known issue: which case or clause, why, where it is tracked, until when."""

    target: str
    reason: str
    link: str
    file: str
    spec: str | None = None
    case: str | None = None
    clause: str | None = None
    expires: dt.date | None = None
    line: int = 0

    def matches(self, target: str, spec: str, case: str, clause: str, clause_spec: str | None = None) -> bool:
        """Whether it covers ``clause`` failed in ``case`` of ``spec``; a clause waiver may name the spec of
        the case or of the clause (``clause_spec``: an invariant's clause may be of another spec)."""
        return (
            self.target == target
            and self.spec in (None, spec, clause_spec)
            and self.case in (None, case)
            and self.clause in (None, clause)
        )

    def note(self) -> str:
        return f"known issue: {self.reason} ({self.link})"

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and self.expires < (today or dt.date.today())

    def as_record(self, judged: str) -> dict[str, str | None]:
        """The waiver as a record shows it; ``covers`` is the clause it waives, or "all" of the case's failures."""
        return {
            "reason": self.reason,
            "link": self.link,
            "file": self.file,
            "expires": self.expires.isoformat() if self.expires else None,
            "covers": judged if self.clause else "all",
        }


def load_waivers(path: Path, limits: SpecLimits = DEFAULT_LIMITS) -> list[Waiver]:
    """Waivers of a known-issues file; SpecError names the file and line of every problem."""
    doc = read_yaml(path, "known-issues", limits)
    waivers, problems = [], []
    for index, entry in enumerate(doc.data["waivers"]):
        expires = None
        if "expires" in entry:
            try:
                expires = dt.date.fromisoformat(entry["expires"])
            except ValueError:  # the schema checks the shape, not the calendar
                line = doc.line(["waivers", index, "expires"])
                problems.append(f"{path}:{line}: waivers/{index}/expires: {entry['expires']!r} is not a real date")
        waivers.append(
            Waiver(
                target=doc.data["target"],
                reason=entry["reason"],
                link=entry["link"],
                file=str(path),
                spec=entry.get("spec"),
                case=entry.get("case"),
                clause=entry.get("clause"),
                expires=expires,
                line=doc.line(["waivers", index]),
            )
        )
    if problems:
        raise SpecError(problems)
    return waivers


def check_waivers(waivers: Iterable[Waiver], specs: Iterable[Spec], targets: set[str]) -> list[str]:
    """Waivers naming a target not being run, or a spec, clause or case that is not in the specs, as file:line: ...

    A clause the invariants check (``engine.invariants.CHECKED``) can fail in a case of any spec, so a
    waiver may pair it with any spec or case; an IMPL case can also fail the clauses its steps name
    as ``otherwise``.
    """
    by_name = {spec.name: spec for spec in specs}
    known = {clause for spec in by_name.values() for clause in spec.clauses}
    problems = []
    for waiver in waivers:
        where = f"{waiver.file}:{waiver.line}:"
        if waiver.target not in targets:
            running = ", ".join(sorted(targets)) or "none"
            problems.append(f"{where} target {waiver.target!r} is not being run (running: {running})")
        if waiver.spec is not None and waiver.spec not in by_name:
            problems.append(f"{where} no spec {waiver.spec!r} (known: {', '.join(sorted(by_name))})")
            continue
        chosen = [by_name[waiver.spec]] if waiver.spec else list(by_name.values())
        scope = f"spec {waiver.spec}" if waiver.spec else "any spec"
        invariant = waiver.clause in CHECKED and waiver.clause in known
        if waiver.clause is not None and not invariant and not any(waiver.clause in s.clauses for s in chosen):
            problems.append(f"{where} no clause {waiver.clause!r} in {scope}")
            continue
        if waiver.case is not None:
            cases = [case for spec in chosen for case in spec.cases if case.id == waiver.case]
            if not cases:
                problems.append(f"{where} no case {waiver.case!r} in {scope}")
            elif waiver.clause is not None and not invariant and all(waiver.clause not in _fails(c) for c in cases):
                problems.append(f"{where} case {waiver.case!r} checks clause {cases[0].clause}, not {waiver.clause}")
    return problems


def _fails(case: Case) -> set[str]:
    """The clauses a case can fail besides the invariants: its own, and any ``otherwise`` its steps name."""
    return {case.clause, *(step.expect["otherwise"] for step in case.steps if "otherwise" in step.expect)}


@dataclass(frozen=True)
class Judged:
    """A ran case's outcome and note, the waiver its record shows, and the waiver covering each failed clause."""

    outcome: str
    reason: str | None = None
    waiver: dict[str, str | None] | None = None
    covered: dict[str, dict[str, str | None]] = field(default_factory=dict)


def judge(waivers: Sequence[Waiver], target: str, spec: str, case: str, clause: str,
          failed: Sequence[Mapping[str, Any]], today: dt.date | None = None) -> Judged:  # fmt: skip
    """The outcome of a case that ran, given the clauses it failed (``records.failed_clauses``).

    ``clause`` is the one the case judges (its own, or an IMPL case's ``otherwise``). The record is
    ``waived`` only when an unexpired waiver covers every failed clause: a clause waiver wherever its
    clause fails, a case waiver all of its case's. Some waived and some not: ``failed``, and the note
    names both. A case that passes although a waiver of its clause or case holds: ``unexpectedly-passed``.
    """
    own = find_waiver(waivers, target, spec, case, clause)
    if not failed:
        if own is None:
            return Judged("passed")
        if own.expired(today):
            return Judged("passed", f"waiver expired on {own.expires}", own.as_record(clause))
        passes = f"passes although waived: {own.reason} ({own.link})"
        return Judged("unexpectedly-passed", passes, own.as_record(clause))
    covering: dict[str, Waiver] = {}
    stale: list[str] = []
    for entry in failed:
        found = [w for w in waivers if w.matches(target, spec, case, entry["clause"], entry.get("spec"))]
        live = next((w for w in found if not w.expired(today)), None)
        if live is not None:
            covering[entry["clause"]] = live
        elif found:
            stale.append(f"waiver expired on {found[0].expires}")
    covered = {name: w.as_record(name) for name, w in covering.items()}
    shown = own.as_record(clause) if own is not None else next(iter(covered.values()), None)
    by_waiver: dict[Waiver, list[str]] = {}
    for name, w in covering.items():
        by_waiver.setdefault(w, []).append(name)
    waived = "waived: " + "; ".join(f"{', '.join(names)} ({w.note()})" for w, names in by_waiver.items())
    unwaived = list(dict.fromkeys(entry["clause"] for entry in failed if entry["clause"] not in covering))
    if not unwaived:
        return Judged("waived", waived if len(covering) > 1 else next(iter(covering.values())).note(), shown, covered)
    note = [f"{waived}; not waived: {', '.join(unwaived)}"] if covering else []
    return Judged("failed", "; ".join(dict.fromkeys(note + stale)) or None, shown, covered)


def run_waivers(targets: Iterable[str], files: Iterable[Path]) -> list[Waiver]:
    """The waivers of a run: the given known-issues files and those shipped for its targets; SpecError lists
    every problem of every file."""
    paths = [*files, *(p for t in targets if (p := bundled_known_issues(t)))]
    waivers: list[Waiver] = []
    problems: list[str] = []
    for path in paths:
        try:
            waivers += load_waivers(path)
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    return waivers


def bundled_known_issues(target: str) -> Path | None:
    """The known-issues file shipped for a bundled target, if any."""
    path = Path(str(files("conformance.adapters"))) / "known-issues" / f"{target}.yaml"
    return path if path.is_file() else None


def find_waiver(waivers: Sequence[Waiver], target: str, spec: str, case: str, clause: str) -> Waiver | None:
    """The first waiver that covers a case of a target."""
    return next((w for w in waivers if w.matches(target, spec, case, clause)), None)
