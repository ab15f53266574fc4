"""The matrix printed at the end of a run: one row per target, one column per spec."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SHORT = {
    "conformant": "ok",
    "conformant-with-warnings": "warn",
    "non-conformant": "FAIL",
    "incomplete": "ERROR",
    "not-applicable": "n/a",
    "not-run": "not run",
}


def matrix(verdicts: Iterable[dict[str, Any]]) -> list[str]:
    """Lines of a target x spec table of verdicts, then the failing clauses of each cell."""
    verdicts = list(verdicts)
    specs = sorted({v["spec"] for v in verdicts})
    targets = sorted({v["target"] for v in verdicts})
    cell = {(v["target"], v["spec"]): v for v in verdicts}
    width = max([len("target"), *map(len, targets)])
    cols = [max(len(s), 7) for s in specs]
    lines = ["  ".join(["target".ljust(width), *(s.ljust(c) for s, c in zip(specs, cols, strict=True))])]
    for target in targets:
        row = [SHORT.get(cell[(target, s)]["verdict"], "-") if (target, s) in cell else "-" for s in specs]
        lines.append("  ".join([target.ljust(width), *(r.ljust(c) for r, c in zip(row, cols, strict=True))]))
    for v in verdicts:
        for clause, cases in v["failed_clauses"].items():
            lines.append(f"  {v['target']} {v['spec']}: {clause} failed in {', '.join(cases)}")
    lines.append(
        "ok = conformant, warn = a SHOULD failed or a waiver was used, FAIL = a MUST failed, n/a = not applicable"
    )
    return lines


def behaviour_lines(behaviours: dict[str, dict[str, list[str]]]) -> list[str]:
    """Implementation-defined behaviour, one line per case, where the targets differ."""
    lines = []
    for key, row in behaviours.items():
        if len({tuple(v) for v in row.values()}) > 1:
            lines.append(f"  {key}: " + "; ".join(f"{t} {' / '.join(v)}" for t, v in row.items()))
    return ["implementation-defined behaviour that differs between targets:", *lines] if lines else []
