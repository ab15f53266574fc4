"""The files of a run's output folder, named in one place: what the run writes and what a new run clears.

``records/``   one JSON-lines file of records per process (a "running" line when a case starts)
``manifest/``  every item a process collected, so a case that never finished is reported, not lost
``progress/``  phase events per process (opening and closing targets, done), read by the watchdog
``crashes/``   per process, the fatal-signal dump of ``faulthandler``
``ledger/``    the cleanup journal: kept across runs, so ``gspc clean`` can finish an earlier one
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: Folders and files a run writes afresh; everything else in ``--out`` (the ledger) is left alone.
RUN_FOLDERS = ("records", "manifest", "progress", "crashes", "selections")
RUN_FILES = ("records.jsonl", "summary.json", "junit.xml", "index.html")


def reset(out: Path) -> None:
    """Remove what an earlier run left in ``out``, so no stale output survives into this run's reports."""
    for name in RUN_FOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file; a line torn by a crash, or that is not a JSON object, is skipped."""
    # a torn write can cut a character in two: replace it rather than stop reading the file
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, an over-long number, or absurdly nested
                continue
            if isinstance(value, dict):
                yield value


def write_manifest(out: Path, process: str, items: Iterable[dict[str, Any]]) -> None:
    """Record what a process collected (one record base per item), before any case runs."""
    folder = out / "manifest"
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{process}-{os.getpid()}.tmp"
    with temp.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    temp.replace(folder / f"{process}-{os.getpid()}.jsonl")  # whole or absent: never a torn manifest


def manifest(out: Path) -> dict[str, dict[str, Any]] | None:
    """Every collected item by node id, over all processes and attempts; None if nothing was collected."""
    folder = out / "manifest"
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        return None
    return {item["nodeid"]: item for path in files for item in json_lines(path)}


def write_selection(path: Path, nodeids: Iterable[str]) -> None:
    """A file of node ids (one JSON string a line: ids may hold any character) for ``--gspc-only``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(n, ensure_ascii=False) + "\n" for n in nodeids), encoding="utf-8")


def read_selection(path: Path) -> set[str]:
    """The node ids of a selection file."""
    return {json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


class Events:
    """Phase events of one process (open, opened, close, closed, done), flushed as they happen."""

    def __init__(self, out: Path, process: str) -> None:
        folder = out / "progress"
        folder.mkdir(parents=True, exist_ok=True)
        self._file = (folder / f"{process}-{os.getpid()}.jsonl").open("a", encoding="utf-8")
        self.process = process

    def log(self, event: str, **data: Any) -> None:
        line = {"event": event, "process": self.process, "pid": os.getpid(), "at": time.time(), **data}
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
