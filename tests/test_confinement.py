"""Every path a case addresses stays under its scratch prefix, judged by segments, before any driver call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conformance.adapters.fs import FsDriver
from conftest import gspc

from conformance.driver import Mode, Object
from conformance.engine.runner import CaseRun, run_case
from conformance.engine.tracker import Ledger, OutsideRun, Tracker, confined
from conformance.redact import Redactor
from conformance.spec.loader import load_spec

PREFIX = "gspc-RUN/spec/case/0/"

REFUSED_PATHS = {
    "parent": PREFIX + "../x",
    "parent deeper": PREFIX + "a/../../x",
    "parent last": PREFIX + "a/..",
    "dot": PREFIX + "./x",
    "dot inside": PREFIX + "a/./b",
    "empty segment": PREFIX + "a//b",
    "spec absolute": PREFIX + "/etc/passwd",
    "trailing slash": PREFIX + "a/",
    "the prefix itself": PREFIX,
    "the prefix without slash": PREFIX[:-1],
    "absolute": "/etc/passwd",
    "nul": PREFIX + "a\x00b",
    "backslash": PREFIX + "a\\..\\..\\x",
    "sibling case": "gspc-RUN/spec/case/01/x",
    "sibling run": "gspc-RUN-other/spec/case/0/x",
    "other run": "gspc-other/x",
    "empty": "",
    "not a string": 7,
}
REFUSED_LISTINGS = {
    "parent": PREFIX + "..",
    "parent folder": PREFIX + "../",
    "double slash": PREFIX + "a//",
    "dot": PREFIX + "./",
    "the prefix without slash": PREFIX[:-1],
    "other case": "gspc-RUN/spec/case/",
    "absolute": "/",
}
ACCEPTED_PATHS = [PREFIX + "x", PREFIX + "a/b/c/object", PREFIX + "unicode-路径", PREFIX + "with space/obj ect",
                  PREFIX + "..x", PREFIX + ".hidden", PREFIX + "x.."]  # fmt: skip
ACCEPTED_LISTINGS = [PREFIX, PREFIX + "a/", PREFIX + "a/b/", PREFIX + "si", PREFIX + ".h"]


@pytest.mark.parametrize("path", REFUSED_PATHS.values(), ids=REFUSED_PATHS)
def test_confined_refuses_paths_outside_by_segments(path: Any) -> None:
    assert confined(path, PREFIX)


@pytest.mark.parametrize("path", REFUSED_LISTINGS.values(), ids=REFUSED_LISTINGS)
def test_confined_refuses_listing_prefixes_outside(path: str) -> None:
    assert confined(path, PREFIX, listing=True)


@pytest.mark.parametrize("path", ACCEPTED_PATHS)
def test_confined_accepts_paths_under_the_prefix(path: str) -> None:
    assert confined(path, PREFIX) is None


@pytest.mark.parametrize("path", ACCEPTED_LISTINGS)
def test_confined_accepts_listing_prefixes_under_the_prefix(path: str) -> None:
    assert confined(path, PREFIX, listing=True) is None


def test_a_prefix_with_a_parent_segment_confines_nothing() -> None:
    assert confined("gspc-x/../../y/", "gspc-x/../../", listing=True)
    assert confined("gspc-x/../y", "gspc-x/../")


class Recording:
    """A driver that records every attribute the tracker touches, and does nothing."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return lambda **kwargs: [] if name == "list" else Object(path=kwargs.get("path", ""))


@pytest.fixture
def tracked(tmp_path: Path) -> tuple[Tracker, Recording, Path]:
    driver = Recording()
    ledger = Ledger(tmp_path / "RUN-main.jsonl", "RUN")
    return Tracker(driver, "recording", PREFIX, ledger), driver, ledger.path


def hostile_calls() -> dict[str, tuple[str, Any, dict[str, Any]]]:
    calls = {}
    for label, path in REFUSED_PATHS.items():
        for op in ("write", "read", "stat", "delete", "create_append"):
            calls[f"{op} {label}"] = (op, path, {"path": path})
    for label, path in REFUSED_LISTINGS.items():
        calls[f"list {label}"] = ("list", path, {"prefix": path})
    outside = Object(path=PREFIX + "../x", mode=Mode.APPEND)
    calls["write_append outside object"] = ("write_append", outside.path, {"obj": outside, "data": b"x"})
    calls["commit_append outside object"] = ("commit_append", outside.path, {"obj": outside})
    calls["argument differs from label"] = ("write", PREFIX + "x", {"path": PREFIX + "../x", "data": b"x"})
    calls["prefix differs from label"] = ("list", PREFIX, {"prefix": "gspc-other/"})
    calls["object without label"] = ("write_append", None, {"obj": outside, "data": b"x"})
    return calls


HOSTILE = hostile_calls()


@pytest.mark.parametrize("call", HOSTILE.values(), ids=HOSTILE)
def test_the_tracker_refuses_before_any_driver_call_or_journal_line(tracked, call) -> None:
    tracker, driver, journal = tracked
    op, path, args = call
    with pytest.raises(OutsideRun):
        tracker.call(op, path, args)
    assert driver.calls == [] and tracker.created == {}
    assert journal.read_text(encoding="utf-8") == ""
    assert tracker.cleanup() == [] and driver.calls == []


def test_the_tracker_sends_paths_under_the_prefix(tracked) -> None:
    tracker, driver, journal = tracked
    for path in ACCEPTED_PATHS:
        assert tracker.call("write", path, {"path": path, "data": b""})[1] is None
    assert tracker.call("list", PREFIX, {"prefix": PREFIX})[1] is None
    assert driver.calls == ["write"] * len(ACCEPTED_PATHS) + ["list"]
    assert list(tracker.created) == ACCEPTED_PATHS


HOSTILE_SPEC = """\
id: GSP-9999
title: Hostile paths
version: 1
source: tests/test_confinement.py
clauses:
  - id: hostile.escape
    rule: DEL-1
    level: MUST
    status: adopted
    text: Nothing.
    source: here
cases:
  - id: write-foreign
    clause: hostile.escape
    title: Overwrites a file beside the run root.
    steps:
      - write: {path: ../../../../foreign.txt, data: overwritten}
  - id: delete-foreign
    clause: hostile.escape
    title: Deletes a file beside the run root.
    steps:
      - delete: {path: ../../../../foreign.txt}
  - id: delete-other-run
    clause: hostile.escape
    title: Deletes another run's file.
    steps:
      - delete: {path: ../../../../gspc-other/keep.txt}
  - id: write-other-run
    clause: hostile.escape
    title: Overwrites another run's file through a deeper path.
    steps:
      - write: {path: a/../../../../../gspc-other/keep.txt, data: overwritten}
  - id: write-sibling-run
    clause: hostile.escape
    title: Writes beside the run root with a name sharing its text.
    steps:
      - write: {path: "../../../../{run}-sibling/x", data: overwritten}
    params: {run: [gspc-x]}
  - id: list-parent
    clause: hostile.escape
    title: Lists above the case.
    steps:
      - list: {prefix: ../}
  - id: append-foreign
    clause: hostile.escape
    title: Truncates a foreign file by append.
    steps:
      - create_append: {path: ../../../../foreign.txt}
      - commit_append: {obj: {path: ../../../../foreign.txt, mode: [append]}}
  - id: write-absolute
    clause: hostile.escape
    title: An absolute path becomes an empty segment.
    steps:
      - write: {path: /etc/gspc-hostile, data: overwritten}
"""
FOREIGN = {
    "foreign.txt": b"not ours\n",
    "gspc-other/keep.txt": b"another run's\n",
    "gspc-x-sibling/x": b"a sibling of the run root\n",
    "top/deep/file.bin": bytes(range(256)),
}


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    specs = tmp_path / "hostile"
    specs.mkdir()
    (specs / "hostile.yaml").write_text(HOSTILE_SPEC, encoding="utf-8")
    root = tmp_path / "dir"
    for name, body in FOREIGN.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return specs, root


def foreign_intact(root: Path) -> bool:
    """Exactly the foreign files, byte for byte, and no folder but theirs."""
    found = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    folders = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}
    return found == FOREIGN and folders == {"gspc-other", "gspc-x-sibling", "top", "top/deep"}


def test_a_hostile_spec_run_leaves_every_foreign_file_byte_for_byte(hostile, tmp_path: Path) -> None:
    specs, root = hostile
    done = gspc("run", "--target", f"fs@{root}", "--specs-dir", str(specs), "--out", "out", cwd=tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr
    assert foreign_intact(root)
    records_file = tmp_path / "out" / "records.jsonl"
    if records_file.exists():  # lint did not stop the run: every case is a harness error, never a pass
        outcomes = [json.loads(line)["outcome"] for line in records_file.read_text().splitlines()]
        assert outcomes and set(outcomes) == {"error"}


def test_the_engine_refuses_hostile_steps_without_lint(hostile, tmp_path: Path) -> None:
    specs, root = hostile
    spec = load_spec(specs / "hostile.yaml")  # schema only: lint would refuse these paths first
    driver = FsDriver(str(root))
    ledger = Ledger(tmp_path / "ledger" / "RUN-main.jsonl", "RUN")
    refused = []
    for case in spec.cases:
        for expansion in case.expansions():
            params = {name: value for name, (_, value) in expansion.items()}
            tracker = Tracker(driver, f"fs@{root}", f"gspc-RUN/hostile/{case.id}/0/", ledger)
            with pytest.raises(OutsideRun) as caught:
                run_case(case, params, tracker, {}, Redactor(), CaseRun())
            refused.append(str(caught.value))
            assert tracker.created == {} and tracker.cleanup() == []
    ledger.close()
    assert len(refused) == len(spec.cases)
    assert foreign_intact(root)
    assert '"created"' not in ledger.path.read_text()
