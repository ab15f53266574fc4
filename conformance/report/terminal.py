"""The matrix printed at the end of a run (one row per target, one column per spec), and text safe for a terminal."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from conformance.verdict import clause_outcomes

SHORT = {
    "conformant": "ok",
    "conformant-with-warnings": "warn",
    "non-conformant": "FAIL",
    "incomplete": "ERROR",
    "not-applicable": "n/a",
    "not-run": "not run",
    "refuses-correctly": "refuses",
}
LEGEND = (
    "ok = conformant, warn = a SHOULD failed or a waiver was used, FAIL = a MUST failed, "
    "refuses = not implemented, refuses correctly, n/a = not applicable"
)
#: The outcome words of the README, in the order a count line names them.
WORDS = ("passed", "failed", "error", "unexpectedly-passed", "waived", "observed", "not-applicable", "not-run")

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


def matrix(verdicts: Iterable[dict[str, Any]], records: Iterable[dict[str, Any]] | None = None) -> list[str]:
    """Lines of a target x spec table of verdicts, the legend, then why each cell is not simply ok.

    With the run's records, each warn, FAIL and ERROR cell gets one line naming its cause (failed
    clauses, waivers with reason and link); without them, the failing clauses of each cell.
    """
    verdicts = list(verdicts)
    specs = sorted({printable(str(v["spec"])) for v in verdicts})
    targets = sorted({printable(str(v["target"])) for v in verdicts})
    cell = {(printable(str(v["target"])), printable(str(v["spec"]))): v for v in verdicts}
    width = max([len("target"), *map(len, targets)])
    cols = [max(len(s), 7) for s in specs]
    lines = ["  ".join(["target".ljust(width), *(s.ljust(c) for s, c in zip(specs, cols, strict=True))]).rstrip()]
    for target in targets:
        row = [SHORT.get(cell[(target, s)]["verdict"], "-") if (target, s) in cell else "-" for s in specs]
        lines.append("  ".join([target.ljust(width), *(r.ljust(c) for r, c in zip(row, cols, strict=True))]).rstrip())
    lines.append(LEGEND)
    if records is not None:
        return lines + reasons(verdicts, records)
    for v in verdicts:
        for clause, cases in v["failed_clauses"].items():
            shown = printable(f"{v['target']} {v['spec']}: {clause} failed in {', '.join(map(str, cases))}")
            lines.append(f"  {shown}")
    return lines


def reasons(verdicts: list[dict[str, Any]], records: Iterable[dict[str, Any]]) -> list[str]:
    """One line per warn, FAIL or ERROR cell: its failed clauses by level (as the verdict counted them), its
    errors, and its waivers with the first one's reason and link."""
    wanted = {(v["target"], v["spec"]): v for v in verdicts if v["verdict"] in _EXPLAINED}
    levels: dict[str, str] = {}
    errors: set[tuple[str, str, str]] = set()
    waived: dict[tuple[str, str], dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    why: dict[tuple[str, str], str] = {}
    for r in records:
        levels.setdefault(str(r.get("clause")), str(r.get("level")))
        failure = r.get("failure")
        for entry in (failure.get("clauses") or []) if isinstance(failure, dict) else []:
            if isinstance(entry, dict) and entry.get("level"):
                levels.setdefault(str(entry.get("clause")), str(entry["level"]))
        key = (r.get("target"), r.get("spec"))
        if r.get("outcome") == "error" and key in wanted:
            errors.add((*key, str(r.get("clause"))))
        elif r.get("outcome") == "unexpectedly-passed" and key in wanted:
            waived[key][_WAIVED["unexpectedly-passed"]][str(r.get("clause"))] += 1
        elif r.get("outcome") in ("failed", "waived"):  # each waived clause in its own spec's cell, invariants too
            for clause, outcome, entry in clause_outcomes(r):
                at = (r.get("target"), (entry or {}).get("spec") or r.get("spec"))
                if outcome != "waived" or at not in wanted:
                    continue
                waived[at]["waived"][clause] += 1
                waiver = (entry or {}).get("waiver") or r.get("waiver")
                if isinstance(waiver, dict):
                    reason = str(waiver.get("reason"))
                    why.setdefault(at, f"{reason if len(reason) <= 80 else reason[:77] + '...'} ({waiver.get('link')})")
    lines = []
    for key in sorted(wanted, key=str):
        causes: dict[str, Counter] = defaultdict(Counter)
        for clause, cases in wanted[key]["failed_clauses"].items():
            what = "error" if (*key, clause) in errors else f"{levels.get(clause, 'a')} failed"
            causes[what][clause] = len(cases)
        causes.update(waived[key])
        parts = [f"{what}: {_clauses(found)}" for what, found in sorted(causes.items(), key=_worst_first)]
        parts += [f"known issue: {why[key]}"] if key in why else []
        text = f"{key[0]} {key[1]}: {SHORT[wanted[key]['verdict']]}: {'; '.join(parts) or 'see the records'}"
        lines.append("  " + printable(text, 400))
    return lines


_EXPLAINED = ("conformant-with-warnings", "non-conformant", "incomplete")
_WAIVED = {"unexpectedly-passed": "passed despite a waiver", "waived": "waived"}


def _worst_first(item: tuple[str, Counter]) -> tuple[int, str]:
    order = ("MUST failed", "error", "SHOULD failed", "MAY failed", "passed despite a waiver", "waived")
    return (order.index(item[0]) if item[0] in order else len(order), item[0])


def _clauses(found: Counter) -> str:
    shown = [f"{clause} ({n})" if n > 1 else clause for clause, n in sorted(found.items())]
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def counts(totals: dict[str, int]) -> str:
    """Case counts in the README's outcome words: ``412 passed, 4 waived, 208 not-applicable``."""
    named = [f"{totals[word]} {word}" for word in WORDS if totals.get(word)]
    named += [f"{n} {printable(str(word))}" for word, n in totals.items() if word not in WORDS and n]
    return ", ".join(named) or "no case"


def behaviour_lines(behaviours: dict[str, dict[str, list[str]]]) -> list[str]:
    """Implementation-defined behaviour, one line per case, where the targets differ."""
    lines = []
    for key, row in behaviours.items():
        if len({tuple(v) for v in row.values()}) > 1:
            shown = {t: " / ".join(str(label) for label in v) for t, v in row.items()}
            text = f"{key}: " + "; ".join(f"{t} {labels}" for t, labels in shown.items())
            lines.append(f"  {printable(text)}")
    return ["implementation-defined behaviour that differs between targets:", *lines] if lines else []
