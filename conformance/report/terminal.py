"""The matrix printed at the end of a run (one row per target, one column per spec), and text safe for a terminal."""

from __future__ import annotations

import re
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

#: What a driver's text must not send to a terminal raw: C0 controls but newline and tab (ESC starts
#: ANSI sequences that recolour, move the cursor or retitle the window; CR overwrites the line), DEL,
#: C1 controls, bidirectional controls (text that reads otherwise than it is) and lone surrogates
#: (a UTF-8 stream refuses to encode them).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str, limit: int | None = None) -> str:
    """Text fit for a terminal: unsafe characters shown escaped (``\\x1b``), newlines and tabs kept, at most
    ``limit`` characters (then the original length is noted)."""
    shown = _UNSAFE.sub(_escaped, text)
    if limit is not None and len(shown) > limit:
        return f"{shown[:limit]}... [truncated: {len(text)} chars]"
    return shown


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def matrix(verdicts: Iterable[dict[str, Any]]) -> list[str]:
    """Lines of a target x spec table of verdicts, then the failing clauses of each cell."""
    verdicts = list(verdicts)
    specs = sorted({printable(str(v["spec"])) for v in verdicts})
    targets = sorted({printable(str(v["target"])) for v in verdicts})
    cell = {(printable(str(v["target"])), printable(str(v["spec"]))): v for v in verdicts}
    width = max([len("target"), *map(len, targets)])
    cols = [max(len(s), 7) for s in specs]
    lines = ["  ".join(["target".ljust(width), *(s.ljust(c) for s, c in zip(specs, cols, strict=True))])]
    for target in targets:
        row = [SHORT.get(cell[(target, s)]["verdict"], "-") if (target, s) in cell else "-" for s in specs]
        lines.append("  ".join([target.ljust(width), *(r.ljust(c) for r, c in zip(row, cols, strict=True))]))
    for v in verdicts:
        for clause, cases in v["failed_clauses"].items():
            shown = printable(f"{v['target']} {v['spec']}: {clause} failed in {', '.join(map(str, cases))}")
            lines.append(f"  {shown}")
    lines.append(
        "ok = conformant, warn = a SHOULD failed or a waiver was used, FAIL = a MUST failed, n/a = not applicable"
    )
    return lines


def behaviour_lines(behaviours: dict[str, dict[str, list[str]]]) -> list[str]:
    """Implementation-defined behaviour, one line per case, where the targets differ."""
    lines = []
    for key, row in behaviours.items():
        if len({tuple(v) for v in row.values()}) > 1:
            text = f"{key}: " + "; ".join(f"{t} {' / '.join(map(str, v))}" for t, v in row.items())
            lines.append(f"  {printable(text)}")
    return ["implementation-defined behaviour that differs between targets:", *lines] if lines else []
