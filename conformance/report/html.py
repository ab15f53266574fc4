"""index.html: one self-contained page (matrix, clauses, cases with traces) rendered from the records.

The page must open fast with 100,000 records, so the data is split into three inert
``<script type="application/json">`` blocks that the page reads in order: a small head
(aggregates: the matrix, per-clause counts, metadata) that renders the first view, a columnar
case index with a string table, and the step traces, one line per record, parsed only when a
case is opened. Every string reaches the page as JSON with ``<``, ``>``, ``&``, U+2028 and
U+2029 escaped, and the page builds its DOM with textContent only.

The page shows only what the records hold (cleaned by the redactor when written) and the summary
computed from them. Records from elsewhere may still be odd: a value of the wrong type is shown as
its JSON, a lone surrogate as its ``\\udxxx`` escape; nothing in a record can stop the page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from collections import Counter
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from conformance.records import OUTCOMES, PROBLEMS
from conformance.report.diff import case_change
from conformance.verdict import clause_outcomes, compute

LEVEL_ORDER = {"MUST": 0, "SHOULD": 1, "MAY": 2, "IMPL": 3}
CHANGES = ("", "new failure", "fixed", "changed", "added")

# Escapes that keep JSON inert inside <script>: no "</script>", no "<!--", no entity, no JS line breaks.
_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
_MARKERS = ("@@HEAD@@", "@@INDEX@@", "@@TRACES@@")


def embed(value: Any) -> str:
    """Compact JSON of ``value`` that is safe as the text of a <script> element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _escape(text)


def _escape(text: str) -> str:
    for raw, escaped in _ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    return text


def deflated(text: str) -> str:
    """``text`` deflated and base64-encoded, as a JSON string (the page inflates it)."""
    # a lone surrogate (from a foreign records file) becomes its JSON escape instead of failing to encode
    data = text.encode("utf-8", "backslashreplace")
    return '"' + base64.b64encode(zlib.compress(data, 1)).decode("ascii") + '"'


def write_html(
    out: Path, records: list[dict[str, Any]], summary: dict[str, Any], baseline: list[dict[str, Any]] | None = None
) -> Path:
    """Write ``out/index.html`` for a run's records and summary (and a baseline run's records); return its path."""
    head, index, traces = build(records, summary, baseline)
    parts = _template()
    path = Path(out) / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", errors="backslashreplace") as handle:
        handle.write(parts[0])
        handle.write(embed(head))
        handle.write(parts[1])
        handle.write(deflated(embed(index)))
        handle.write(parts[2])
        handle.write(traces)
        handle.write(parts[3])
    return path


@cache
def _template() -> list[str]:
    """The template cut at its data markers, with the CSP naming the hashes of its own scripts."""
    template = files("conformance.report").joinpath("html_template.html").read_text(encoding="utf-8")
    # Only the page's own scripts may run: injected markup could not run a script or a handler anyway.
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for code in re.findall(r"<script>(.*?)</script>", template, flags=re.S)
    )
    template = template.replace("@@SCRIPT_HASHES@@", hashes)
    parts, rest = [], template
    for marker in _MARKERS:
        before, found, rest = rest.partition(marker)
        if not found:
            raise ValueError(f"html template lacks {marker}")
        parts.append(before)
    return [*parts, rest]


def build(
    records: list[dict[str, Any]], summary: dict[str, Any], baseline: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The page's data: head (aggregates and metadata), columnar index, and the traces text."""
    strings: dict[str, int] = {}
    targets = list(summary.get("targets") or [])
    target_ix = {t: i for i, t in enumerate(targets)}
    spec_meta = summary.get("specs") or {}
    records = [_identified(r) for r in records]
    outcomes = list(OUTCOMES)
    outcome_ix = {o: i for i, o in enumerate(outcomes)}
    clause_ix: dict[tuple[str, str], int] = {}
    clauses: list[list[Any]] = []
    case_ix: dict[tuple[str, str], int] = {}
    cases: list[list[Any]] = []
    failures: dict[tuple[Any, ...], int] = {}
    waivers: dict[str, int] = {}
    agg: Counter = Counter()
    first_problem: dict[tuple[int, int], int] = {}
    base = _baseline_records(baseline)
    judged_sets: dict[str, int] = {}
    cols: dict[str, list[Any]] = {
        k: [] for k in ("tg", "cs", "pm", "nd", "oc", "du", "rs", "fl", "bh", "wv", "wk", "fc")
    }
    tg, cs, pm, nd, oc, du, rs, fl, bh, wv, wk, fc = (cols[k] for k in cols)
    ch: list[int] = []
    bo: list[int] = []
    lines: list[str] = []
    dumps, encode = json.dumps, _line_encoder()

    def sid(text: Any) -> int:
        if text is None:
            return -1
        if type(text) is not str:
            text = _label(text)
        found = strings.get(text)
        if found is None:
            found = strings[text] = len(strings)
        return found

    def oid(outcome: str) -> int:
        found = outcome_ix.get(outcome)
        if found is None:
            found = outcome_ix[outcome] = len(outcomes)
            outcomes.append(outcome)
        return found

    def waiver_id(waiver: Any) -> int:
        return waivers.setdefault(dumps(waiver, sort_keys=True, default=repr), len(waivers)) if waiver else -1

    def other_clause(entry: dict[str, Any], spec: str) -> int:
        """The row of a clause failed beside the case's own (an invariant's, maybe of another spec)."""
        ck = (_label(entry.get("spec") or spec), entry["clause"])
        found = clause_ix.get(ck)
        if found is None:  # its text and status come from a record of its own case, if one is in the run
            found = clause_ix[ck] = len(clauses)
            clauses.append([ck[0], ck[1], _label(entry.get("rule") or ""), _label(entry.get("level") or ""), "", None,
                            None, None])  # fmt: skip
            partial.add(found)
        return found

    partial: set[int] = set()
    for n, r in enumerate(records):
        target, spec, clause, case = r["target"], r["spec"], r["clause"], r["case"]
        t = target_ix.get(target)
        if t is None:
            t = target_ix[target] = len(targets)
            targets.append(target)
        ck = (spec, clause)
        c = clause_ix.get(ck)
        if c is None or (partial and c in partial):
            row = [spec, clause, r.get("rule", ""), r.get("level", ""), r.get("status", ""), r.get("clause_text"),
                   r.get("clause_source"), r.get("clause_index")]  # fmt: skip
            if c is None:
                c = clause_ix[ck] = len(clauses)
                clauses.append(row)
            else:
                clauses[c] = row
                partial.discard(c)
        kk = (spec, case)
        k = case_ix.get(kk)
        if k is None:
            k = case_ix[kk] = len(cases)
            cases.append([c, case, r.get("title", "")])
        outcome = r["outcome"]
        o = oid(outcome)
        tg.append(t)
        cs.append(k)
        params = r.get("params") or {}
        shown = ", ".join(f"{a}={_label(b)}" for a, b in params.items()) if isinstance(params, dict) else params
        pm.append(sid(shown) if params else -1)
        nodeid = r["nodeid"]
        prefix = f"{spec}::{case}[{target}"
        nd.append(sid("\x01" + nodeid[len(prefix) :] if nodeid.startswith(prefix) else nodeid))
        oc.append(o)
        du.append(_micros(r.get("duration")))
        rs.append(sid(r.get("reason")))
        failure = r.get("failure")
        if isinstance(failure, dict):  # identical failures (same step, op, expected, actual) share one row
            step = failure.get("step")
            fk = (step if type(step) is int else None, sid(failure.get("op")), sid(failure.get("expected")),
                  sid(failure.get("actual")))  # fmt: skip
            fl.append(failures.setdefault(fk, len(failures)))
        else:
            fl.append(-1)
        behaviour = r.get("behaviour")
        bh.append(sid(behaviour))
        wv.append(waiver_id(r.get("waiver")))
        wk.append(sid(r.get("worker")))
        judged = clause_outcomes(r) if failure is not None or outcome == "failed" else None
        if judged is None or (len(judged) == 1 and judged[0][2] is None):  # most: only its own clause, as it went
            fc.append(-1)
            agg[(c, t, o)] += 1
            if outcome in PROBLEMS and (c, t) not in first_problem:
                first_problem[(c, t)] = n
        else:  # every clause it judged, each failed one with its level, step, expected, actual and waiver
            rows = []
            for name, how, entry in judged:
                e = entry or {}
                step = e.get("step")
                jc, jo = c if name == clause else other_clause(e, spec), oid(how)
                rows.append([jc, jo, step if type(step) is int else None, sid(e.get("op")), sid(e.get("expected")),
                             sid(e.get("actual")), waiver_id(e.get("waiver"))])  # fmt: skip
                agg[(jc, t, jo)] += 1  # a record counts under every clause it judged, as that clause went
                if how in PROBLEMS and (jc, t) not in first_problem:
                    first_problem[(jc, t)] = n
            fc.append(judged_sets.setdefault(dumps(rows), len(judged_sets)))
        # The trace line also carries what the index leaves out (leftovers), read only when a case opens.
        lines.append(encode([r.get("steps") or [], r.get("leftovers") or []]))
        if base is not None:
            change, was = _change(r, base.pop((target, nodeid), None))
            ch.append(change)
            bo.append(sid(was))

    # specs that ran, and those whose clauses an invariant failed in them (maybe a spec of which no case ran)
    spec_names = sorted(set(map(_label, spec_meta)) | {row[0] for row in clauses})
    spec_ix = {s: i for i, s in enumerate(spec_names)}
    for row in clauses:
        row[0] = spec_ix[row[0]]
    head = {
        "meta": _meta(summary, records),
        "targets": targets,
        "specs": [{"name": s, **spec_meta.get(s, {})} for s in spec_names],
        "outcomes": outcomes,
        "clauses": clauses,
        "cases": cases,
        "verdicts": _verdicts(summary, baseline),
        "agg": [[c, t, o, count] for (c, t, o), count in agg.items()],
        "problems": [[c, t, n] for (c, t), n in first_problem.items()],
        "behaviours": summary.get("behaviours") or {},
        "baseline": _baseline_head(baseline, ch, base),
        "records": len(records),
    }
    index = {
        "S": list(strings),
        "F": [list(f) for f in failures],
        "W": [json.loads(w) for w in waivers],
        "FC": [json.loads(j) for j in judged_sets],
        "changes": list(CHANGES),
        **cols,
    }
    if base is not None:
        index["ch"], index["bo"] = ch, bo
    return head, index, deflated("\n".join(lines))


#: Fields that identify a record: a page groups by them, so they must be text.
_IDENTITY = ("target", "spec", "clause", "case", "outcome", "nodeid")


def _identified(record: Any) -> dict[str, Any]:
    """The record with its identifying fields as text (a foreign file may hold anything there)."""
    record = record if isinstance(record, dict) else {"outcome": "error", "reason": _label(record)}
    if all(type(record.get(k)) is str for k in _IDENTITY):
        return record
    return {**record, **{k: _label(record.get(k, "")) for k in _IDENTITY}}


def _label(value: Any) -> str:
    """A value as text: strings as they are, anything else as its JSON."""
    return value if type(value) is str else json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)


def _micros(seconds: Any) -> int:
    """A duration in microseconds; 0 for anything that is not a finite number of seconds."""
    return int(seconds * 1e6) if type(seconds) in (int, float) and abs(seconds) < 1e9 else 0


def _line_encoder() -> Callable[[Any], str]:
    """Compact JSON of one value; reuses one C encoder, since building one per call doubles the cost."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    encoder = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(encoder(value, 0))


def _meta(summary: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("run_id", "harness_version", "created", "duration", "verdict", "exit_code", "environment", "drivers")
    meta = {k: summary.get(k) for k in keys}
    meta["totals"] = summary.get("totals") or dict(Counter(r["outcome"] for r in records))
    run_ids = sorted({_label(r.get("run_id", "")) for r in records})
    if len(run_ids) > 1:  # a merged report of several shards or runs
        meta["run_ids"] = run_ids
    return meta


def _verdicts(summary: dict[str, Any], baseline: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    before = {(v.target, v.spec): v.verdict for v in compute(baseline)} if baseline is not None else {}
    rows = []
    for v in summary.get("verdicts") or []:
        row = {k: v.get(k) for k in ("target", "spec", "verdict", "counts")}
        row["failed_clauses"] = len(v.get("failed_clauses") or {})
        if baseline is not None:
            row["was"] = before.get((v["target"], v["spec"]), "absent")
        rows.append(row)
    return rows


def _baseline_records(baseline: list[dict[str, Any]] | None) -> dict[tuple[str, str], dict[str, Any]] | None:
    if baseline is None:
        return None
    return {(r["target"], r["nodeid"]): r for r in map(_identified, baseline)}


def _change(record: dict[str, Any], was: dict[str, Any] | None) -> tuple[int, str | None]:
    """The change of one case against the baseline, clause by clause as the diff judges it: an index into
    CHANGES and the old outcome."""
    kind = case_change(was, record)
    return CHANGES.index(kind) if kind else 0, was and was["outcome"]


def _baseline_head(
    baseline: list[dict[str, Any]] | None, changes: list[int], removed: dict[tuple[str, str], dict[str, Any]] | None
) -> dict[str, Any] | None:
    if baseline is None or removed is None:
        return None
    counts = Counter(changes)
    run_ids = sorted({_label(r.get("run_id", "")) for r in baseline if isinstance(r, dict)})
    return {
        "run_id": ", ".join(run_ids),
        "records": len(baseline),
        "counts": {CHANGES[i]: counts[i] for i in range(1, len(CHANGES))} | {"removed": len(removed)},
        # Removed cases have no record in this run; list them (capped) so a shrinking run is visible.
        "removed": [[t, node, r["outcome"]] for (t, node), r in sorted(removed.items())[:1000]],
    }
