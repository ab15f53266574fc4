"""Cleanup tells the truth: a leftover is what stat still finds, gspc clean stays in the run's root,
reopens targets without masked values, and the fs driver leaves no empty folders or temporary files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conformance.adapters.fs import FsDriver
from conformance.adapters.memory import MemoryDriver
from conftest import gspc

from conformance import errors
from conformance.driver import Object
from conformance.engine.cleanup import Option, clean_run
from conformance.engine.interrupts import CaseTimeout
from conformance.engine.tracker import Ledger, Tracker
from conformance.redact import Redactor

PREFIX = "gspc-RUN/spec/case/0/"


class Stubborn(MemoryDriver):
    """delete reports success and removes nothing."""

    def delete(self, path: str, **pairs: Any) -> None:
        return None


class RaisingButGone(MemoryDriver):
    """delete removes the object, then raises as a flaky service would."""

    def delete(self, path: str, **pairs: Any) -> None:
        super().delete(path)
        raise errors.NetworkError("connection reset after the delete", op="delete", path=path)


class NoStat:
    """A driver without stat: only delete's own word is there to judge by."""

    name = "no-stat"

    def __init__(self, fails: bool) -> None:
        self.fails = fails

    def delete(self, path: str) -> None:
        if self.fails:
            raise errors.PermissionDenied("refused", op="delete", path=path)


class StatBroken(MemoryDriver):
    """stat fails with something other than not-exist: the path is not known to be gone."""

    def stat(self, path: str, **pairs: Any) -> Object:
        raise errors.ServiceInternal("stat broke", op="stat", path=path)


class DeadlineInStat(MemoryDriver):
    """The case's deadline strikes while cleanup checks a path."""

    def stat(self, path: str, **pairs: Any) -> Object:
        raise CaseTimeout("the case did not finish within 1 s")


def tracked(driver: Any, tmp_path: Path, *names: str) -> tuple[Tracker, Path]:
    ledger = Ledger(tmp_path / "RUN-main.jsonl", "RUN")
    tracker = Tracker(driver, "t", PREFIX, ledger)
    for name in names:
        assert tracker.call("write", PREFIX + name, {"path": PREFIX + name, "data": b"x"})[1] is None
    return tracker, ledger.path


def removed_lines(journal: Path) -> list[str]:
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    return [e["path"] for e in entries if e["event"] == "removed"]


def test_a_delete_that_raised_but_removed_the_path_is_no_leftover(tmp_path: Path) -> None:
    tracker, journal = tracked(RaisingButGone(), tmp_path, "a", "b")
    assert tracker.cleanup() == []
    assert removed_lines(journal) == [PREFIX + "b", PREFIX + "a"]


def test_a_delete_that_succeeded_but_left_the_path_is_a_leftover(tmp_path: Path) -> None:
    tracker, journal = tracked(Stubborn(), tmp_path, "a")
    assert tracker.cleanup() == [PREFIX + "a"]
    assert removed_lines(journal) == []


def test_a_stat_that_fails_otherwise_keeps_the_path_a_leftover(tmp_path: Path) -> None:
    driver = StatBroken()
    tracker, _ = tracked(driver, tmp_path, "a")
    assert tracker.cleanup() == [PREFIX + "a"]


def test_a_deadline_during_cleanup_leaves_the_rest_as_leftovers(tmp_path: Path) -> None:
    tracker, journal = tracked(DeadlineInStat(), tmp_path, "a", "b")
    assert tracker.cleanup() == [PREFIX + "b", PREFIX + "a"]  # still journalled as created: gspc clean finishes
    assert removed_lines(journal) == []


@pytest.mark.parametrize("fails", [True, False])
def test_without_stat_the_delete_outcome_decides(tmp_path: Path, fails: bool) -> None:
    tracker = Tracker(NoStat(fails), "t", PREFIX, Ledger(tmp_path / "RUN-main.jsonl", "RUN"))
    tracker.created[PREFIX + "a"] = None
    assert tracker.cleanup() == ([PREFIX + "a"] if fails else [])


# --- gspc clean against drivers whose state outlives one open (class-level stores) -------------


class Shared(MemoryDriver):
    """A memory driver whose objects and constructor options outlive the instance, for clean to reopen."""

    name = "shared"
    objects: ClassVar[dict] = {}
    opened: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **options: Any) -> None:
        super().__init__()
        type(self).opened.append(options)
        self._objects = type(self).objects


class SharedStubborn(Shared):
    def delete(self, path: str, **pairs: Any) -> None:
        return None


class SharedRaisingButGone(Shared):
    def delete(self, path: str, **pairs: Any) -> None:
        super().delete(path)
        raise errors.Unexpected("the service said no, and did it anyway", op="delete", path=path)


class SharedRefusingToOpen(Shared):
    def __init__(self, **options: Any) -> None:
        raise RuntimeError(f"cannot reach the service with token {options.get('token')}")


@pytest.fixture
def shared() -> None:
    Shared.objects.clear()
    Shared.opened.clear()


def journal(folder: Path, target: str, paths: list[str], options: dict[str, Any] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"event": "open", "run_id": "RUN", "target": target, "path": "", "options": options or {}}]
    lines += [{"event": "created", "run_id": "RUN", "target": target, "path": p} for p in paths]
    with (folder / "RUN-gw0.jsonl").open("a") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))


def clean(folder: Path, options: list[str] = ()) -> tuple[int, list[str]]:
    said: list[str] = []
    code = clean_run(folder, "RUN", [Option.parse(o) for o in options], Redactor(), out=said.append)
    return code, said


def test_clean_counts_a_raising_delete_whose_path_is_gone_as_removed(shared, tmp_path: Path) -> None:
    driver = SharedRaisingButGone()
    driver.write("gspc-RUN/a/0/x", b"x")
    journal(tmp_path, "test_cleanup:SharedRaisingButGone", ["gspc-RUN/a/0/x"])
    code, said = clean(tmp_path)
    assert code == 0, said
    assert "removed 1, already gone 0, remaining 0 of 1" in said[0]
    assert clean(tmp_path)[1] == ["run RUN: nothing left to clean"]


def test_clean_reports_a_path_a_succeeding_delete_left_in_place(shared, tmp_path: Path) -> None:
    SharedStubborn().write("gspc-RUN/a/0/x", b"x")
    journal(tmp_path, "test_cleanup:SharedStubborn", ["gspc-RUN/a/0/x", "gspc-RUN/a/0/never-written"])
    code, said = clean(tmp_path)
    assert code == 1
    assert "removed 0, already gone 1, remaining 1 of 2" in said[0]
    assert said[1].endswith("remaining: gspc-RUN/a/0/x")


def test_clean_never_passes_a_masked_value_and_takes_options_from_the_command_line(shared, tmp_path: Path) -> None:
    Shared().write("gspc-RUN/a/0/x", b"x")
    Shared.opened.clear()
    masked = {"token": "***", "password": "********", "api_secret": "***", "region": "eu-1", "bucket": "b"}
    journal(tmp_path, "test_cleanup:Shared", ["gspc-RUN/a/0/x"], masked)
    code, said = clean(tmp_path, ["token=from-the-command-line", "other-target:bucket=not-this-one"])
    assert code == 0, said
    assert Shared.opened == [{"region": "eu-1", "bucket": "b", "token": "from-the-command-line"}]
    assert not any("*" in str(value) for options in Shared.opened for value in options.values())


def test_every_line_clean_prints_is_scrubbed(shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSPC_TEST_TOKEN", "planted-token-31b7a9e0")
    journal(tmp_path, "test_cleanup:SharedRefusingToOpen", ["gspc-RUN/a/0/x"])
    code, said = clean(tmp_path, ["token=planted-token-31b7a9e0"])
    assert code == 1
    assert said and all("planted-token" not in line for line in said)
    assert "cannot clean 1 paths" in said[0]


def test_clean_refuses_a_bad_run_id(tmp_path: Path) -> None:
    for run_id in ("../x", "a/b", "", "x\x00"):
        said: list[str] = []
        assert clean_run(tmp_path, run_id, [], Redactor(), out=said.append) == 2
        assert len(said) == 1


def test_clean_reads_only_this_runs_journal_files(shared, tmp_path: Path) -> None:
    Shared().write("gspc-RUN-2/a/0/x", b"theirs")
    (tmp_path / "RUN-2-gw0.jsonl").write_text(
        json.dumps({"event": "open", "run_id": "RUN-2", "target": "test_cleanup:Shared", "path": ""}) + "\n"
        + json.dumps({"event": "created", "run_id": "RUN-2", "target": "test_cleanup:Shared",
                      "path": "gspc-RUN-2/a/0/x"}) + "\n"
    )  # fmt: skip
    assert clean(tmp_path) == (0, ["run RUN: nothing left to clean"])
    assert "gspc-RUN-2/a/0/x" in Shared.objects


def test_option_parse_refuses_what_is_not_a_pair() -> None:
    assert Option.parse("s3@moto:region=eu") == Option("s3@moto", "region", "eu")
    assert Option.parse("token=a=b") == Option(None, "token", "a=b")
    for bad in ("token", "=x", "not an identifier=x"):
        with pytest.raises(ValueError):
            Option.parse(bad)


# --- a real run's journal, tampered with ------------------------------------------------------


def run_id_of(out: Path) -> str:
    return next((out / "ledger").glob("*.jsonl")).name.rsplit("-", 1)[0]


def tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None for p in root.rglob("*")}


def test_a_tampered_journal_cannot_make_clean_delete_outside_the_run(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    done = gspc("run", "--target", f"fs@{root}", "--spec", "delete", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    run = run_id_of(tmp_path / "out")
    outside = tmp_path / "abs.txt"
    foreign = {"x": b"beside the run\n", "gspc-other/x": b"another run\n", f"gspc-{run}-other/x": b"a sibling\n",
               "gspc-RUN/x": b"a run named RUN\n"}  # fmt: skip
    for name, body in foreign.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    outside.write_bytes(b"absolute\n")
    left = root / f"gspc-{run}" / "delete" / "crashed" / "0" / "left.txt"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"ours")
    hostile = [f"gspc-{run}/../x", str(outside), "gspc-other/x", f"gspc-{run}/a/../../x", f"gspc-{run}-other/x",
               f"gspc-{run}/./../x", f"gspc-{run}//../x", f"gspc-{run}\\..\\x", f"gspc-{run}/", f"gspc-{run}",
               f"gspc-{run}/a\x00b"]  # fmt: skip
    target = f"fs@{root}"
    lines = [{"event": "created", "run_id": run, "target": target, "path": p} for p in hostile]
    lines.append({"event": "created", "run_id": run, "target": target, "path": left.relative_to(root).as_posix()})
    lines.append({"event": "created", "run_id": "RUN", "target": target, "path": "gspc-RUN/x"})
    lines.append({"event": "created", "run_id": run, "target": f"fs@{tmp_path}", "path": f"gspc-{run}/y"})
    with next((tmp_path / "out" / "ledger").glob("*.jsonl")).open("a") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
    cleaned = gspc("clean", "--run-id", run, "--out", "out", cwd=tmp_path)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert tree(root) == {**foreign, "gspc-other": None, f"gspc-{run}-other": None, "gspc-RUN": None}
    assert outside.read_bytes() == b"absolute\n"
    report = cleaned.stdout.splitlines()
    for path in hostile:
        assert sum(f"refused journal path {path!r}" in line for line in report) == 1, (path, report)
    assert any("not of a target of run" in line and "gspc-RUN/x" in line for line in report)
    assert any(f"fs@{tmp_path}: refused 1" in line for line in report)
    assert f"{target}: removed 1, already gone 0, remaining 0 of 1" in report


# --- the fs driver ------------------------------------------------------------------------------


def test_a_full_fs_run_leaves_no_folder_behind(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    (root / "kept").mkdir(parents=True)
    done = gspc("run", "--target", f"fs@{root}", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert tree(root) == {"kept": None}


def test_fs_delete_prunes_emptied_folders_up_to_the_root(tmp_path: Path) -> None:
    fs = FsDriver(str(tmp_path))
    fs.write("gspc-R/a/b/one", b"1")
    fs.write("gspc-R/a/two", b"2")
    fs.delete("gspc-R/a/b/one")
    assert tree(tmp_path) == {"gspc-R": None, "gspc-R/a": None, "gspc-R/a/two": b"2"}
    fs.delete("gspc-R/a/two")
    assert tree(tmp_path) == {} and tmp_path.is_dir()
    fs.delete("gspc-R/a/two")  # idempotent, root kept
    assert tmp_path.is_dir()
    with pytest.raises(errors.PermissionDenied):
        fs.delete("")


def crash_mid_write(root: Path, path: str) -> None:
    """A writer process killed after its temporary file is written, before it is moved into place."""
    code = (
        "import os, sys\n"
        "from conformance.adapters.fs import FsDriver\n"
        "os.replace = lambda *a: os._exit(9)\n"
        "FsDriver(sys.argv[1]).write(sys.argv[2], b'half written')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(root), path], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr


def test_an_interrupted_write_is_cleaned_by_gspc_clean(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    path = "gspc-RUN/spec/case/0/object"
    crash_mid_write(root, path)
    crash_mid_write(root, "gspc-RUN/spec/case/0/object.sibling")  # a temporary file of another name stays
    temps = [p.name for p in (root / "gspc-RUN/spec/case/0").iterdir()]
    assert len(temps) == 2 and all(name.startswith(".gspc-") for name in temps)
    assert [o.path for o in FsDriver(str(root)).list("gspc-RUN/")] == []  # never listed
    journal(tmp_path / "out" / "ledger", f"fs@{root}", [path])
    done = gspc("clean", "--run-id", "RUN", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already gone 1" in done.stdout
    assert len(list((root / "gspc-RUN/spec/case/0").iterdir())) == 1
    FsDriver(str(root)).delete("gspc-RUN/spec/case/0/object.sibling")
    assert tree(root) == {}


def test_fs_never_touches_what_a_symlink_points_to_outside_its_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "run").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside")
    os.symlink(outside / "secret.txt", root / "run" / "file-link")
    os.symlink(outside, root / "run" / "dir-link")
    fs = FsDriver(str(root))
    for op in ("read", "stat"):
        with pytest.raises(errors.PermissionDenied):
            getattr(fs, op)("run/file-link")
    for path in ("run/dir-link/secret.txt", "run/dir-link/new", "../outside/secret.txt", str(outside / "x")):
        with pytest.raises(errors.PermissionDenied):
            fs.write(path, b"overwritten")
        with pytest.raises(errors.PermissionDenied):
            fs.delete(path)
    assert [o.path for o in fs.list("run/")] == []
    fs.create_append("run/file-link")  # the link itself is replaced, never truncated through
    assert not (root / "run" / "file-link").is_symlink()
    os.unlink(root / "run" / "file-link")
    os.symlink(outside / "secret.txt", root / "run" / "file-link")
    fs.write("run/file-link", b"a file now")
    assert (root / "run" / "file-link").read_bytes() == b"a file now"
    fs.delete("run/dir-link")  # the link goes, not what it points to
    assert not (root / "run" / "dir-link").exists()
    assert tree(outside) == {"secret.txt": b"outside"}


def test_fs_refuses_a_nul_in_a_path(tmp_path: Path) -> None:
    with pytest.raises(errors.RestrictionDissatisfied):
        FsDriver(str(tmp_path)).write("a\x00b", b"x")
