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


def compute(records: Iterable[dict[str, Any]]) -> list[Verdict]:
    """One Verdict per (target, spec) present in the records, sorted."""
    table: dict[tuple[str, str], Verdict] = {}
    totals: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for record in records:
        key = (record["target"], record["spec"])
        verdict = table.setdefault(key, Verdict(*key))
        failed = {c["clause"]: c for c in failed_clauses(record)}
        own = record["outcome"]
        if own == "failed" and record["clause"] not in failed:
            own = "passed"  # only an invariant failed: the case's own clause held
        verdict.counts[record["level"]][own] += 1
        totals[key][own] += 1
        if own in ("failed", "error"):
            verdict.failed[record["clause"]].add(record["case"])
        covered = (record.get("waiver") or {}).get("covers") if record["outcome"] == "waived" else None
        for clause, entry in failed.items():  # invariants and IMPL fallbacks count under their own clause
            if clause == record["clause"] or covered in ("all", clause):  # counted above, or waived
                continue
            other = (record["target"], entry.get("spec") or record["spec"])
            extra = table.setdefault(other, Verdict(*other))
            extra.counts[entry.get("level") or record["level"]]["failed"] += 1
            totals[other]["failed"] += 1
            extra.failed[clause].add(record["case"])
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
