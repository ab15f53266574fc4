"""Join the records of several runs (CI shards, or a run and its re-run) into one run's reports."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from conformance.records import new_run_id, read_records, records_path
from conformance.report.summary import finalize


def merge_runs(runs: list[Path], out: Path) -> dict[str, Any]:
    """Write ``out/records.jsonl`` and ``summary.json`` (and the HTML report) from several runs.

    A case present in several runs keeps its record from the last run given, so a re-run listed
    after the run it repeats replaces that run's failures.
    """
    sources = []
    for run in runs:
        source = records_path(run)
        if not source.exists():
            raise FileNotFoundError(f"{run}: no records.jsonl here")
        sources += sorted(source.glob("*.jsonl")) if source.is_dir() else [source]
    parts = out / "records"
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    # finalize merges every part of out/records in name order, later parts winning: number them in run order
    for index, source in enumerate(sources):
        shutil.copyfile(source, parts / f"{index:04d}-{source.stem}.jsonl")
    run_ids = sorted({str(r.get("run_id")) for r in read_records(parts)})
    (out / "index.html").unlink(missing_ok=True)  # a stale page of another run must not survive the merge
    return finalize(out, run_ids[0] if len(run_ids) == 1 else new_run_id())
