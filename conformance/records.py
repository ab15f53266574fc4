"""Result records: their vocabulary, how one is built, written and read, and how a run's parts are joined.

One JSON line per finished case, one file per process, joined into ``records.jsonl`` at the end
(schema: specs/schema/record.schema.json).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from conformance import outputs
from conformance.spec.model import Case, Clause, Spec

if TYPE_CHECKING:
    from conformance.redact import Redactor


_line = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for every line, not one per call

#: Every outcome of a case, worst first (see the README's "What the output means").
OUTCOMES = ("failed", "error", "unexpectedly-passed", "waived", "passed", "observed", "not-applicable", "not-run")
#: Outcomes a re-run repeats and a diff counts as failures: a broken clause, a harness error, a waiver
#: whose case now passes.
PROBLEMS = frozenset({"failed", "error", "unexpectedly-passed"})


class Record(TypedDict, total=False):
    """One case's record: what it checked, on which target, and how it went."""

    run_id: str
    target: str
    driver: str
    spec: str
    spec_id: str
    spec_version: int
    spec_sha256: str
    spec_title: str
    spec_source: str
    spec_file: str
    clause: str
    rule: str
    level: str
    status: str
    clause_text: str
    clause_source: str
    clause_link: str | None
    clause_index: int
    case: str
    case_line: int
    title: str
    refusal: bool
    nodeid: str
    params: dict[str, str]
    worker: str
    outcome: str
    reason: str | None
    duration: float
    steps: list[dict[str, Any]]
    failure: dict[str, Any] | None
    behaviour: str | None
    waiver: dict[str, Any] | None
    leftovers: list[str]


def new_record(run_id: str, spec: Spec, clause: Clause, case: Case, target: str, driver: str, nodeid: str,
               labels: dict[str, str]) -> Record:  # fmt: skip
    """The fields of a case's record that are known before it runs."""
    return {
        "run_id": run_id,
        "target": target,
        "driver": driver,
        "spec": spec.name,
        "spec_id": spec.id,
        "spec_version": spec.version,
        "spec_sha256": spec.sha256,
        "spec_title": spec.title,
        "spec_source": spec.source,
        "spec_file": spec.path.name,
        "clause": clause.id,
        "rule": clause.rule,
        "level": clause.level,
        "status": clause.status,
        "clause_text": clause.text,
        "clause_source": clause.source,
        "clause_link": clause.link,
        "clause_index": list(spec.clauses).index(clause.id),
        "case": case.id,
        "case_line": case.line,
        "title": case.title,
        "refusal": bool(case.unless),  # the case checks that an undeclared capability is refused
        "nodeid": nodeid,
        "params": labels,
        "waiver": None,
        "leftovers": [],
    }


def failed_clauses(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every clause a record failed, each ``{clause, spec, rule, level, step, op, expected, actual}``.

    The engine lists them in ``failure.clauses`` (an invariant may fail a clause of another spec
    beside the case's own, and an IMPL case the rule its alternatives sit under); a failed record
    without that list (a timeout, a crash) failed its own clause.
    """
    failure = record.get("failure")
    listed = failure.get("clauses") if isinstance(failure, dict) else None
    if isinstance(listed, list):
        return [c for c in listed if isinstance(c, dict) and isinstance(c.get("clause"), str)]
    if record.get("outcome") != "failed":
        return []
    step = failure if isinstance(failure, dict) else {}
    own = {"clause": record.get("clause"), "spec": record.get("spec"), "rule": record.get("rule")}
    return [{**own, "level": record.get("level"), **{k: step.get(k) for k in ("step", "op", "expected", "actual")}}]


class RecordWriter:
    """Appends records to one file, flushed per line so a crash loses at most the case running.

    Every record passes the redactor's ``clean`` first: scrubbed, bounded and made of plain JSON
    values, so odd driver data (a lone surrogate, a 10 MB message, a raising repr) can neither
    leak a secret nor stop the line from being written.
    """

    def __init__(self, path: Path, redactor: Redactor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.redactor = redactor
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append one record, cleaned by the redactor."""
        self._file.write(_line(self.redactor.clean(record)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file or of every ``*.jsonl`` in a folder; torn or foreign lines are skipped."""
    if not path.exists():
        return
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    for file in files:
        yield from outputs.json_lines(file)


def records_path(path: Path) -> Path:
    """The records of a run: the file itself, a folder's ``records.jsonl``, or its per-process parts."""
    if path.is_dir() and (path / "records.jsonl").is_file():
        return path / "records.jsonl"
    if path.is_dir() and (path / "records").is_dir():
        return path / "records"
    return path


def load_run(path: Path) -> list[dict[str, Any]]:
    """Every finished record of a run (a records file or a run's folder); FileNotFoundError if none."""
    source = records_path(path)
    if not source.exists():
        raise FileNotFoundError(f"{path}: no records.jsonl here")
    return [r for r in read_records(source) if r.get("outcome") != "running"]


#: Why a case that started has no final record; decided from what its process left behind.
CRASHED = "the process running this case crashed with a fatal signal in driver code"
DIED = "the process running this case died before it finished: killed from outside, or a harness failure"
NEVER_RAN = "the case was collected but never ran: the run stopped before it"
INTERRUPTED = "the run was interrupted (Ctrl-C) before this case finished"


def merge(out: Path, missing: str = NEVER_RAN, died: str = DIED) -> list[dict[str, Any]]:
    """Join a run's per-process records into ``records.jsonl``, ordered by target and node id; return them.

    Every collected case (the manifest) ends with exactly one record: a case whose process died
    leaves only its "running" line and becomes a failure when its process dumped a fatal signal
    (driver code crashed), an error ``died`` otherwise; a case that never started is an error ``missing``.
    """
    collected = outputs.manifest(out) or {}
    final: dict[tuple[str, str], dict[str, Any]] = {}
    started: dict[tuple[str, str], dict[str, Any]] = {}
    for record in read_records(out / "records"):
        key = (record["target"], record["nodeid"])
        if record["outcome"] != "running":
            final[key] = record
        elif record["nodeid"] in collected:  # a "running" line names the case; the manifest has the rest
            started.setdefault(key, record)
    for key, running in started.items():
        if key not in final:
            record = {**collected[running["nodeid"]], **running}
            crashed = _crash_dump(out, record.get("pid"))
            final[key] = ended(record, "failed" if crashed else "error", CRASHED if crashed else died, crashed)
    for base in collected.values():
        key = (base["target"], base["nodeid"])
        if key not in final:
            final[key] = ended({**base, "worker": "none"}, "error", missing, None)
    records = [final[k] for k in sorted(final)]
    with (out / "records.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(_line(record) + "\n")
    return records


def ended(running: dict[str, Any], outcome: str, reason: str, actual: str | None = None) -> dict[str, Any]:
    """The final record of a case that did not finish by itself, from its "running" line or manifest entry."""
    record = {k: v for k, v in running.items() if k != "pid"}
    failure = {"step": 1, "op": "case", "expected": "the case to finish", "actual": actual or reason}
    return {**record, "outcome": outcome, "reason": reason, "duration": record.get("duration", 0.0), "steps": [],
            "failure": failure if outcome == "failed" else None, "behaviour": None, "leftovers": []}  # fmt: skip


def _crash_dump(out: Path, pid: Any) -> str | None:
    """The first lines of a process's fatal-signal dump, if it left one."""
    path = out / "crashes" / f"{pid}.txt"
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return "\n".join(text.splitlines()[:12])[:2000] if text else None


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
