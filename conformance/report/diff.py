"""Run-to-run diff: new failures, fixes, outcome changes, added and removed cases, verdict changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.records import PROBLEMS
from conformance.report.terminal import printable
from conformance.spec.model import LEVELS
from conformance.verdict import clause_outcomes, compute

#: Change kinds, in the order reports show them; every clause of a case that differs has exactly one.
KINDS = ("new failure", "fixed", "changed", "added", "removed")
HEADINGS = {"new failure": "new failures", "fixed": "fixed", "changed": "changed", "added": "added",
            "removed": "removed"}  # fmt: skip
DETAIL_LIMIT = 1000  # characters of one case's detail in the terminal diff


def change(outcome: str | None, was: str | None) -> str | None:
    """The kind of change of one case from ``was`` to ``outcome`` (None: absent); None if unchanged."""
    if outcome is None:
        return "removed"
    if was is None:
        return "new failure" if outcome in PROBLEMS else "added"
    if outcome == was:
        return None
    if outcome in PROBLEMS and was not in PROBLEMS:
        return "new failure"
    if was in PROBLEMS and outcome not in PROBLEMS:
        return "fixed"
    return "changed"


@dataclass(frozen=True)
class Entry:
    """One clause of a case that differs between the runs (the whole case where one run lacks it)."""

    kind: str
    spec: str
    level: str
    clause: str
    nodeid: str
    old: str | None
    new: str | None
    detail: str = ""


@dataclass
class Diff:
    """The differences between two runs, with the target pairing used to compare them."""

    entries: list[Entry] = field(default_factory=list)
    verdicts: list[tuple[str, str, str, str]] = field(default_factory=list)  # target, spec, old, new
    paired: tuple[str, str] | None = None

    def of(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]

    @property
    def new_failures(self) -> bool:
        return any(e.kind == "new failure" for e in self.entries)


def compare(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> Diff:
    """Compare two runs case by case, clause by clause; two single-target runs of different targets are paired."""
    old_targets, new_targets = {r["target"] for r in old}, {r["target"] for r in new}
    paired = None
    if len(old_targets) == 1 and len(new_targets) == 1 and old_targets != new_targets:
        paired = (next(iter(old_targets)), next(iter(new_targets)))
    rename = {paired[0]: paired[1]} if paired else {}
    before = {_key(r, rename): r for r in old}
    after = {_key(r, {}): r for r in new}
    ids = {_text(r.get("spec")): r.get("spec_id") for r in (*old, *new)}
    entries = []
    for key in sorted(before.keys() | after.keys()):
        entries += _changes(before.get(key), after.get(key), ids)
    entries.sort(key=lambda e: (KINDS.index(e.kind), e.spec, _level(e.level), e.clause, e.nodeid))
    renamed = [{**r, "target": rename.get(r["target"], r["target"])} for r in old]
    verdict_before = {(v.target, v.spec): v.verdict for v in compute(renamed)}
    verdict_after = {(v.target, v.spec): v.verdict for v in compute(new)}
    verdicts = [
        (target, spec, verdict_before.get((target, spec), "absent"), verdict_after.get((target, spec), "absent"))
        for target, spec in sorted(verdict_before.keys() | verdict_after.keys())
        if verdict_before.get((target, spec)) != verdict_after.get((target, spec))
    ]
    return Diff(entries, verdicts, paired)


def case_change(was: dict[str, Any] | None, now: dict[str, Any] | None) -> str | None:
    """The kind of change of one case, judged clause by clause: its first change in KINDS order, None if none."""
    kinds = {entry.kind for entry in _changes(was, now, {})}
    return next((kind for kind in KINDS if kind in kinds), None)


#: A clause a record does not list as failed held in that run.
HELD = ("passed", None)


def _changes(was: dict[str, Any] | None, now: dict[str, Any] | None, ids: dict[Any, Any]) -> list[Entry]:
    """The changes of one case: of each clause it judged in either run (every failed clause, invariants too,
    under its own spec and level), or of the case as a whole where only one run has it."""
    if was is None or now is None:
        base = now if now is not None else was
        assert base is not None  # the key came from one of the runs
        kind = change(now and now["outcome"], was and was["outcome"])
        old, new = was and was["outcome"], now and now["outcome"]
        return [_entry(kind, base, base.get("clause"), base, old, new, _detail(now), ids)] if kind else []
    before = {c: (o, e) for c, o, e in clause_outcomes(was)}
    after = {c: (o, e) for c, o, e in clause_outcomes(now)}
    found = []
    for clause in dict.fromkeys([*after, *before]):
        (old, old_entry), (new, new_entry) = before.get(clause, HELD), after.get(clause, HELD)
        if (kind := change(new, old)) is None:
            continue
        if clause == now.get("clause"):
            found.append(_entry(kind, now, clause, now, old, new, _detail(now) if new in PROBLEMS else "", ids))
        else:
            entry = new_entry or old_entry or {}
            detail = _step(new_entry) if new_entry and new in PROBLEMS else ""
            found.append(_entry(kind, now, clause, {"spec": now.get("spec"), **entry}, old, new, detail, ids))
    return found


def _entry(kind: str, record: dict[str, Any], clause: Any, judged: dict[str, Any], old: str | None, new: str | None,
           detail: str, ids: dict[Any, Any]) -> Entry:  # fmt: skip
    """One change of ``clause`` in ``record``'s case; ``judged`` gives the clause's spec and level."""
    spec = _text(judged.get("spec") or record.get("spec"))
    return Entry(kind, f"{_text(ids.get(spec))} {spec}".strip(), _text(judged.get("level")), _text(clause),
                 _text(record.get("nodeid")), old, new, detail)  # fmt: skip


def _key(record: dict[str, Any], rename: dict[str, str]) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    """A case's identity without its node id, which embeds the target name (so targets can be paired)."""
    target = rename.get(record["target"], record["target"])
    params = record.get("params")
    labels = tuple(sorted((_text(k), _text(v)) for k, v in params.items())) if isinstance(params, dict) else ()
    return _text(target), _text(record.get("spec")), _text(record.get("case")), labels


def _text(value: Any) -> str:
    """A record field as text (a foreign records file may hold anything)."""
    return value if isinstance(value, str) else "" if value is None else repr(value)


def _level(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def _detail(record: dict[str, Any] | None) -> str:
    """Why a case now fails: the first mismatch, or the reason given."""
    if record is None or record["outcome"] not in PROBLEMS:
        return ""
    failure = record.get("failure")
    return _step(failure) if isinstance(failure, dict) else _text(record.get("reason"))


def _step(failure: dict[str, Any]) -> str:
    step, op, expected, actual = (_text(failure.get(k)) for k in ("step", "op", "expected", "actual"))
    return f"step {step} {op}: expected {expected}, got {actual}"


def _arrow(entry: Entry) -> str:
    return f"{entry.old or '(absent)'} -> {entry.new or '(absent)'}"


def _groups(entries: Iterable[Entry]) -> dict[tuple[str, str], list[Entry]]:
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        groups.setdefault((entry.spec, entry.level), []).append(entry)
    return groups


def _headline(diff: Diff) -> str:
    counts = [f"{len(diff.of(kind))} {HEADINGS[kind]}" for kind in KINDS]
    return ", ".join(counts) + f"; verdict changes: {len(diff.verdicts)}"


def text(diff: Diff, old_name: str, new_name: str) -> str:
    """The diff for a terminal: verdict changes, then each kind grouped by spec and level."""
    lines = [f"gspc diff {old_name} -> {new_name}: {_headline(diff)}"]
    if diff.paired:
        lines.append(f"comparing target {diff.paired[0]} (old) with {diff.paired[1]} (new)")
    if diff.verdicts:
        lines.append("\nverdict changes")
        lines += [f"  {target}  {spec}: {old} -> {new}" for target, spec, old, new in diff.verdicts]
    for kind in KINDS:
        entries = diff.of(kind)
        if not entries:
            continue
        lines.append(f"\n{HEADINGS[kind]} ({len(entries)})")
        for (spec, level), group in _groups(entries).items():
            lines.append(f"  {spec} {level}")
            for e in group:  # node ids and details carry driver text: shown escaped, never as terminal controls
                lines.append(printable(f"    {e.nodeid}  [{e.clause}]  {_arrow(e)}"))
                if e.detail:
                    lines.append(printable(f"      {e.detail}", DETAIL_LIMIT))
    if len(lines) == 1:
        lines.append("no differences")
    return "\n".join(lines) + "\n"


def markdown(diff: Diff, old_name: str, new_name: str) -> str:
    """The diff as a pull-request comment: a headline, verdict changes, and a table per kind."""
    icon = ":x:" if diff.new_failures else ":white_check_mark:"
    lines = [f"### {icon} GSP conformance: {_md(old_name)} → {_md(new_name)}", "", _headline(diff)]
    if diff.paired:
        lines += ["", f"Comparing target `{diff.paired[0]}` (old) with `{diff.paired[1]}` (new)."]
    if diff.verdicts:
        lines += ["", "#### Verdict changes", "", "| target | spec | old | new |", "|---|---|---|---|"]
        lines += [f"| {_md(t)} | {_md(s)} | {old} | **{new}** |" for t, s, old, new in diff.verdicts]
    for kind in KINDS:
        entries = diff.of(kind)
        if not entries:
            continue
        lines += ["", f"#### {HEADINGS[kind].capitalize()} ({len(entries)})", ""]
        # long lists fold so a comment stays readable; new failures stay open
        if kind != "new failure":
            lines += ["<details><summary>show</summary>", ""]
        lines += ["| spec | level | clause | case | old → new | detail |", "|---|---|---|---|---|---|"]
        for e in entries:
            lines.append(f"| {_md(e.spec)} | {e.level} | {_md(e.clause)} | {_md(e.nodeid)} | "
                         f"{e.old or '—'} → {e.new or '—'} | {_md(e.detail)} |")  # fmt: skip
        if kind != "new failure":
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _md(value: str) -> str:
    """Table-cell safe: pipes and newlines would break the row, angle brackets would become markup."""
    cut = value if len(value) <= 300 else value[:297] + "..."
    return cut.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")
