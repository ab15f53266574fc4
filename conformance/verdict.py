"""Verdicts per target and spec, computed from the records alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.records import failed_clauses
from conformance.spec.model import LEVELS

VERDICTS = (
    "conformant",
    "conformant-with-warnings",
    "non-conformant",
    "incomplete",
    "not-applicable",
    "not-run",
    "refuses-correctly",
)
#: Ran cases were only refusals (``unless`` cases) and all passed: the driver declares none of the spec.
REFUSES = "refuses-correctly"


@dataclass
class Verdict:
    """The verdict of one target on one spec, with outcome counts per level."""

    target: str
    spec: str
    verdict: str = "not-run"
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    waived: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    refusals: int = 0  # ran cases that check a refusal

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "spec": self.spec,
            "verdict": self.verdict,
            "counts": {level: dict(self.counts[level]) for level in LEVELS if level in self.counts},
            "failed_clauses": {clause: sorted(cases) for clause, cases in sorted(self.failed.items())},
        }


def judge(outcomes: Counter, levels: dict[str, Counter]) -> str:
    """The verdict for a set of outcomes: any MUST failure is non-conformance."""
    if levels.get("MUST", Counter())["failed"]:
        return "non-conformant"
    if outcomes["error"]:
        return "incomplete"
    ran = sum(outcomes.values()) - outcomes["not-applicable"] - outcomes["not-run"]
    if not ran:
        return "not-run" if outcomes["not-run"] else "not-applicable"
    if outcomes["failed"] or outcomes["waived"] or outcomes["unexpectedly-passed"]:
        return "conformant-with-warnings"
    return "conformant"


def refined(verdict: str, outcomes: Counter, refusals: int) -> str:
    """``refuses-correctly`` for a conformant verdict whose every ran case was a passed refusal case."""
    ran = sum(outcomes.values()) - outcomes["not-applicable"] - outcomes["not-run"]
    if verdict == "conformant" and ran and refusals == ran == outcomes["passed"]:
        return REFUSES
    return verdict


def clause_outcomes(record: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """How each clause a record judged went: ``(clause, outcome, failed-clause entry)``, its own clause first.

    The own clause fails or is waived where it is among ``records.failed_clauses``, and held (passed)
    where only other clauses failed; every other failed clause is waived when a waiver covers it
    (the entry's ``waiver``; a record from before per-clause waivers, by its waiver's ``covers``).
    """
    failed = {c["clause"]: c for c in failed_clauses(record)}
    own, outcome = record["clause"], record["outcome"]
    waiver = record.get("waiver")
    covers = waiver.get("covers") if isinstance(waiver, dict) and outcome == "waived" else None

    def judged(entry: dict[str, Any]) -> str:
        return "waived" if entry.get("waiver") or covers in ("all", entry["clause"]) else "failed"

    if own in failed:
        first = judged(failed[own])
    elif outcome == "failed" or (outcome == "waived" and failed):
        first = "passed"  # only other clauses failed: the case's own clause held
    else:
        first = outcome
    return [(own, first, failed.get(own)), *((c, judged(e), e) for c, e in failed.items() if c != own)]


def compute(records: Iterable[dict[str, Any]]) -> list[Verdict]:
    """One Verdict per (target, spec) present in the records, sorted."""
    table: dict[tuple[str, str], Verdict] = {}
    totals: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for record in records:
        key = (record["target"], record["spec"])
        verdict = table.setdefault(key, Verdict(*key))
        for clause, outcome, entry in clause_outcomes(record):
            if entry is None or clause == record["clause"]:
                judged, level = verdict, record["level"]
            else:  # invariants and IMPL fallbacks count under their own clause, level and spec
                other = (record["target"], entry.get("spec") or record["spec"])
                judged, level = table.setdefault(other, Verdict(*other)), entry.get("level") or record["level"]
            judged.counts[level][outcome] += 1
            totals[(judged.target, judged.spec)][outcome] += 1
            if outcome in ("failed", "error"):
                judged.failed[clause].add(record["case"])
            elif outcome == "waived":
                judged.waived[clause].add(record["case"])
        if record.get("refusal") is True and record["outcome"] not in ("not-applicable", "not-run"):
            verdict.refusals += 1
    for key, verdict in table.items():
        verdict.verdict = refined(judge(totals[key], verdict.counts), totals[key], verdict.refusals)
    return [table[k] for k in sorted(table)]


def worst(verdicts: Iterable[Verdict]) -> str:
    """The worst verdict of a run: non-conformant, then incomplete, not-run, warnings, conformant, refusals only."""
    found = {v.verdict for v in verdicts}
    for name in ("non-conformant", "incomplete", "not-run", "conformant-with-warnings", "conformant", REFUSES):
        if name in found:
            return name
    return "not-applicable"


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """0 conformant (warnings or refusals only allowed), 1 non-conformant, 3 incomplete or a target not run."""
    return {"non-conformant": 1, "incomplete": 3, "not-run": 3}.get(worst(verdicts), 0)


def behaviours(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """What each target did on each implementation-defined case: {clause/case: {target: [labels]}}."""
    table: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record in records:
        if record["outcome"] == "observed":
            table[f"{record['clause']}/{record['case']}"][record["target"]].add(record["behaviour"])
    return {key: {t: sorted(labels) for t, labels in sorted(row.items())} for key, row in sorted(table.items())}
