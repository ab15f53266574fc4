"""A shrunk failure as a spec file: ``found/<target>-<hash>.yaml``, which lint accepts and ``gspc run`` replays."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from conformance.explore.machine import Contradiction
from conformance.explore.results import clause, spec_of
from conformance.redact import Redactor


def safe_name(target: str) -> str:
    """A target name as a file stem and case id: lower case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-") or "target"


def case_steps(failure: Contradiction) -> list[dict[str, Any]]:
    """The steps of the case: each as it ran, the last with only the expectation it missed."""
    found = []
    for index, step in enumerate(failure.steps, start=1):
        entry: dict[str, Any] = {step.op: step.args}
        expect = failure.expect if index == len(failure.steps) else step.expect
        if expect:
            entry["expect"] = expect
        if step.save:
            entry["save"] = step.save
        found.append(entry)
    return found


def requires(failure: Contradiction) -> list[str]:
    """The capability tokens the steps use: their operations and the read pairs."""
    tokens = {step.op for step in failure.steps}
    tokens |= {f"read.{pair}" for step in failure.steps if step.op == "read" for pair in ("offset", "size")
               if pair in step.args}  # fmt: skip
    return sorted(tokens)


def build(failure: Contradiction, target: str, note: str) -> tuple[str, dict[str, Any]]:
    """The file stem and the spec document of a failure; ``note`` says which run found it."""
    steps = case_steps(failure)
    digest = hashlib.sha256(json.dumps([target, failure.clause, steps], sort_keys=True).encode()).hexdigest()[:8]
    stem = f"{safe_name(target)}-{digest}"
    rule = clause(failure.clause)
    origin = f"The clause is copied from the bundled spec {spec_of(rule.id)}.yaml."
    document = {
        # a distinct number per file, so several found cases lint together in one folder
        "id": f"GSP-{int(digest, 16)}",
        "title": f"Found by gspc explore on {target}: {rule.id}",
        "version": 1,
        "source": f"gspc explore ({note}), shrunk by Hypothesis",
        "description": f"A generated sequence of {len(steps)} steps on which {target} contradicts {rule.id}: "
        f"at step {len(steps)} ({failure.steps[-1].op}) the reference model expected {failure.expected}, "
        f"the driver gave {failure.actual}. {origin} Replay: gspc run --target {target} --specs-dir found",
        "clauses": [{k: v for k, v in dataclasses.asdict(rule).items() if v is not None}],
        "cases": [
            {
                "id": stem,
                "clause": rule.id,
                "title": f"The shrunk sequence should meet {rule.id} at step {len(steps)} ({failure.steps[-1].op}).",
                "requires": requires(failure),
                "steps": steps,
            }
        ],
    }
    return stem, document


def write_case(folder: Path, failure: Contradiction, target: str, note: str, redactor: Redactor) -> Path:
    """Write the failure's spec file into ``folder``; its path."""
    stem, document = build(failure, target, note)
    folder.mkdir(parents=True, exist_ok=True)
    # escaped non-ASCII keeps an NFD name NFD whatever an editor does to the file
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=False, default_flow_style=None, width=120)
    path = folder / f"{stem}.yaml"
    path.write_text(redactor.scrub(text), encoding="utf-8")
    return path
