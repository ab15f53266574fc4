"""A driver author's first hour: naming a driver, reading what went wrong, starting from a skeleton."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import gspc, records

RAW = """from conformance.adapters.memory import MemoryDriver


class Raw(MemoryDriver):
    name = "raw"

    def delete(self, path, **pairs):
        return self._call(path)

    def _call(self, path):
        raise RuntimeError("backend exploded")
"""


def test_a_raw_exception_is_recorded_with_the_driver_frames_that_raised_it(tmp_path: Path) -> None:
    (tmp_path / "rawstore.py").write_text(RAW, encoding="utf-8")
    done = gspc("run", "--driver", "rawstore:Raw", "--spec", "delete", "--out", "out", "--",
                "-k", "delete-missing and flat", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    (record,) = [r for r in records(tmp_path / "out") if r["outcome"] == "failed"]
    error = record["steps"][0]["error"]
    assert error["type"] == "RuntimeError"
    assert error["frames"] == [{"file": "rawstore.py", "line": 8, "function": "delete"},
                               {"file": "rawstore.py", "line": 11, "function": "_call"}]  # fmt: skip
    where = "raised at rawstore.py:11 in _call, called from rawstore.py:8 in delete"
    assert where in record["failure"]["actual"] and where in done.stdout
    assert "conformance/engine" not in json.dumps(error)  # harness frames are dropped
