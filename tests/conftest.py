"""Shared helpers: run ``gspc`` as a user would, in a subprocess, with the test drivers importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent


def gspc(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m conformance`` with tests/ on the import path, in ``env`` (default: this environment)."""
    environ = dict(os.environ if env is None else env)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def records(out: Path) -> list[dict[str, Any]]:
    """The merged records of a run."""
    return [json.loads(line) for line in (out / "records.jsonl").read_text(encoding="utf-8").splitlines()]


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def memory_fs_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """One run of every bundled spec against memory and fs, shared by the tests that read it."""
    work = tmp_path_factory.mktemp("memory-fs")
    done = gspc("run", "--target", "memory", "--target", "fs", "--out", "out", cwd=work)
    return done, work / "out"
