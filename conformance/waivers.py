"""Known-issues files: per target, a failure listed with reason and link is waived, not hidden."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from conformance.spec.limits import DEFAULT_LIMITS, SpecLimits
from conformance.spec.loader import SpecError, read_yaml
from conformance.spec.model import Spec


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

    def matches(self, target: str, spec: str, case: str, clause: str) -> bool:
        return (
            self.target == target
            and self.spec in (None, spec)
            and self.case in (None, case)
            and self.clause in (None, clause)
        )

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
    """Waivers naming a target not being run, or a spec, clause or case that is not in the specs, as file:line: ..."""
    by_name = {spec.name: spec for spec in specs}
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
        if waiver.clause is not None and not any(waiver.clause in spec.clauses for spec in chosen):
            problems.append(f"{where} no clause {waiver.clause!r} in {scope}")
            continue
        if waiver.case is not None:
            cases = [case for spec in chosen for case in spec.cases if case.id == waiver.case]
            if not cases:
                problems.append(f"{where} no case {waiver.case!r} in {scope}")
            elif waiver.clause is not None and all(case.clause != waiver.clause for case in cases):
                problems.append(f"{where} case {waiver.case!r} checks clause {cases[0].clause}, not {waiver.clause}")
    return problems


def judge(waiver: Waiver | None, failed: bool, today: dt.date | None = None) -> tuple[str, str | None]:
    """The outcome of a case that ran, and why, given whether its clause failed and the waiver covering it."""
    if waiver is None:
        return ("failed", None) if failed else ("passed", None)
    if waiver.expired(today):
        note = f"waiver expired on {waiver.expires}"
        return ("failed", note) if failed else ("passed", note)
    if failed:
        return "waived", f"known issue: {waiver.reason} ({waiver.link})"
    return "unexpectedly-passed", f"passes although waived: {waiver.reason} ({waiver.link})"


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


def find_waiver(waivers: list[Waiver], target: str, spec: str, case: str, clause: str) -> Waiver | None:
    """The first waiver that covers a case of a target."""
    return next((w for w in waivers if w.matches(target, spec, case, clause)), None)
