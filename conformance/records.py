"""Result records: one JSON line per finished case, one file per process, merged at the end."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.redact import Redactor


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
        self._file.write(json.dumps(self.redactor.clean(record), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file or of every ``*.jsonl`` in a folder; torn or foreign lines are skipped."""
    if not path.exists():
        return
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    for file in files:
        # a torn write can cut a character in two: replace it rather than stop reading the file
        with file.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # not JSON, an over-long number, or absurdly nested
                    continue
                if isinstance(record, dict):
                    yield record


CRASHED = "the process running this case died before the case finished (a crash, a kill or os._exit)"


def merge(parts: Path, into: Path) -> list[dict[str, Any]]:
    """Join the per-process files into one, ordered by target and node id; return the records.

    A case whose process died leaves only its "running" line: it becomes a failure, never a gap.
    """
    final: dict[tuple[str, str], dict[str, Any]] = {}
    for record in read_records(parts):
        key = (record["target"], record["nodeid"])
        if record["outcome"] != "running":
            final[key] = record
        elif key not in final:
            final[key] = {**record, "outcome": "failed", "reason": CRASHED, "duration": 0.0, "steps": [],
                          "failure": {"step": 1, "op": "case", "expected": "the case to finish", "actual": CRASHED},
                          "behaviour": None}  # fmt: skip
    records = [final[k] for k in sorted(final)]
    into.parent.mkdir(parents=True, exist_ok=True)
    with into.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return records


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
