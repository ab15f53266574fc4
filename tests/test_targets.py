"""Bundled targets side by side: behaviour differences are observed, missing credentials are visible."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import gspc, records, summary


@pytest.fixture(scope="module")
def fs_and_dropbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("fs-dropbox")
    done = gspc("run", "--target", "fs", "--target", "dropbox@emulator", "--spec", "append", "--out", "out", cwd=work)
    assert done.returncode == 0, done.stdout[-3000:]
    return work / "out"


def test_append_differences_are_observed_not_failed(fs_and_dropbox: Path) -> None:
    found = summary(fs_and_dropbox)["behaviours"]
    assert found["append.read-before-commit/read-before-commit"] == {
        "dropbox@emulator": ["not readable before commit"],
        "fs": ["readable before commit"],
    }
    assert found["append.write-after-commit/write-after-commit"]["dropbox@emulator"] == [
        "refused after commit (ObjectModeInvalid)"
    ]
    assert found["append.write-after-commit/write-after-commit"]["fs"] == ["appends after commit"]
    assert {v["verdict"] for v in summary(fs_and_dropbox)["verdicts"]} == {"conformant"}


def test_live_dropbox_without_credentials_is_reported_not_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPBOX_")}
    done = gspc("run", "--target", "dropbox@live", "--spec", "delete", "--out", "out", cwd=tmp_path, env=env)
    assert done.returncode == 3
    found = records(tmp_path / "out")
    assert found and {r["outcome"] for r in found} == {"not-run"}
    assert "DROPBOX_TOKEN" in found[0]["reason"]
    assert any(line.startswith("dropbox@live") and "not run" in line for line in done.stdout.splitlines())
