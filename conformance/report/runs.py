"""Earlier runs as inputs: a records file or a run's folder, and which of its cases went wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conformance.records import read_records

#: Outcomes a re-run repeats and a diff counts as failures: those pytest reports as failed or broken
#: (a broken clause, a harness error, a waiver whose case now passes).
PROBLEMS = frozenset({"failed", "error", "unexpectedly-passed"})


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


def failed_nodeids(records: list[dict[str, Any]]) -> set[str]:
    """Node ids of the cases that went wrong (node ids name their target, so they are unique)."""
    return {r["nodeid"] for r in records if r.get("outcome") in PROBLEMS and isinstance(r.get("nodeid"), str)}
