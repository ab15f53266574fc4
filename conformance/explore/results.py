"""Explore's records: the fields of a spec case's record, under the spec ``explore``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from conformance.engine.invariants import clauses
from conformance.spec.model import Clause

SPEC = "explore"
TITLE = "Generated operation sequences checked against the reference model"


def clause(cid: str) -> Clause:
    """A clause of the bundled specs by id."""
    return clauses()[cid][1]


def spec_of(cid: str) -> str:
    """The name of the bundled spec a clause belongs to."""
    return clauses()[cid][0]


@cache
def digest() -> str:
    """The sha256 of the clauses explore judges against: the ``spec_sha256`` of its records."""
    rows = [[cid, c.rule, c.level, c.status, c.text, c.source] for cid, (_, c) in clauses().items()]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


SHRINK_SECONDS = 5.0  # by default Hypothesis shrinks this long at most; the step-deleting pass after it is quick


@dataclass(frozen=True)
class Budget:
    """What one exploration was allowed: examples, steps per example, seconds, its seed, and shrinking time."""

    examples: int
    steps: int
    seconds: float | None
    seed: int
    shrink: float = SHRINK_SECONDS  # seconds Hypothesis may shrink a failure before the shortest so far is kept

    def params(self) -> dict[str, str]:
        shown = {"examples": str(self.examples), "steps": str(self.steps), "seed": str(self.seed)}
        return shown | ({"time": f"{self.seconds:g}"} if self.seconds is not None else {})


def record(run_id: str, target: str, driver: str, cid: str, case: str, title: str, budget: Budget,
           **fields: Any) -> dict[str, Any]:  # fmt: skip
    """A whole record for one clause; ``fields`` gives outcome, reason, duration, steps, failure, leftovers."""
    rule = clause(cid)
    return {
        "run_id": run_id,
        "target": target,
        "driver": driver,
        "spec": SPEC,
        "spec_id": SPEC,
        "spec_version": 1,
        "spec_sha256": digest(),
        "spec_title": TITLE,
        "clause": rule.id,
        "rule": rule.rule,
        "level": rule.level,
        "status": rule.status,
        "clause_text": rule.text,
        "clause_source": rule.source,
        "clause_index": list(clauses()).index(rule.id),
        "case": case,
        "title": title,
        "nodeid": f"{SPEC}::{target}::{case}",
        "params": budget.params(),
        "outcome": "passed",
        "reason": None,
        "duration": 0.0,
        "steps": [],
        "failure": None,
        "behaviour": None,
        "waiver": None,
        "leftovers": [],
        "worker": SPEC,
        **fields,
    }


def case_id(cid: str) -> str:
    """The case name of a clause's passing record: ``explore-delete-removes``."""
    return f"{SPEC}-" + cid.replace(".", "-")
