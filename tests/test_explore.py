"""gspc explore: sequence bugs are found, shrunk, written as cases that replay; correct targets show none."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import gspc, records

from conformance.driver import Capabilities
from conformance.explore.model import ABSENT, UNKNOWN, Known, Model, Payload
from conformance.explore.run import explore
from conformance.targets import Target, TargetUnavailable, open_target

#: Each sequence-bug driver and the clauses its shrunk failure may name: how the bug shows decides which
#: (a stale cache after a write is storager.overwrite, after create_append and commit append.content-order;
#: a drifted append read in a range is errors.range-honoured, its stat append.complete).
BROKEN = {
    "StaleReadCache": {"storager.overwrite", "append.content-order", "errors.range-honoured"},
    "ListingTombstone": {"storager.list-exact", "append.content-order"},
    "OffsetDrift": {"append.content-order", "append.complete", "errors.range-honoured"},
    "LostCommit": {"append.content-order", "append.complete"},
}
SEED = 1
#: Seconds a failure may be shrunk: as long as shrinking takes on a busy machine, so the shortest
#: sequence is found however loaded the machine is (the default 5 s cut it at 6 steps under a load of 6).
SHRINK = 60


@dataclass
class Found:
    """What one ``gspc explore`` of a sequence-bug driver left: its exit code, summary and failure."""

    exit_code: int
    summary: dict[str, Any]
    failed: list[dict[str, Any]]

    @property
    def clause(self) -> str:
        return self.summary["failed_clause"]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.failed[0]["steps"]


@pytest.fixture(scope="module", params=sorted(BROKEN))
def found(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Found, Path]:
    """One ``gspc explore`` of a sequence-bug driver, in its own process as a user runs it (Hypothesis draws on
    the modules a process has imported, so an exploration inside this test process would depend on the others)."""
    out = tmp_path_factory.mktemp(request.param)
    target = f"sequence_drivers:{request.param}"
    done = gspc("explore", target, "--examples", "300", "--steps", "100", "--seed", str(SEED), "--out", "out",
                "--shrink-time", str(SHRINK), cwd=out)  # fmt: skip
    out = out / "out"
    (summary_file,) = (out / "explore").glob("*.json")
    failed = [r for r in records(out) if r["outcome"] == "failed"]
    return request.param, Found(done.returncode, json.loads(summary_file.read_text()), failed), out


def _quiet(line: str) -> None:
    return None


def test_bug_found_and_shrunk(found: tuple[str, Any, Path]) -> None:
    """Each sequence bug is found within 300 examples, shrunk to at most 5 steps, under the clause it breaks."""
    name, result, _ = found
    assert result.exit_code == 1
    assert result.clause in BROKEN[name]
    assert len(result.steps) <= 5


def test_bug_needs_a_sequence(found: tuple[str, Any, Path]) -> None:
    """No bug shows in fewer than three operations: the drivers pass any operation alone."""
    assert len(found[1].steps) >= 3


def test_found_case_lints_and_replays(found: tuple[str, Any, Path]) -> None:
    """The written spec passes lint and `gspc run --specs-dir found` fails it again, under the same clause."""
    name, result, out = found
    assert (out / result.summary["case"]).parent == out / "found"
    linted = gspc("specs", "lint", "--specs-dir", "found", cwd=out)
    assert linted.returncode == 0, linted.stderr
    target = f"sequence_drivers:{name}"
    rerun = gspc("run", "--target", target, "--specs-dir", "found", "--out", "rerun", cwd=out)
    assert rerun.returncode in (0, 1), rerun.stderr  # 0 when the clause is a SHOULD
    (replayed,) = records(out / "rerun")
    assert replayed["outcome"] == "failed"
    assert replayed["clause"] == result.clause


def test_failure_recorded_like_a_case(found: tuple[str, Any, Path]) -> None:
    """The failure is a record of spec explore with its clause, the shrunk steps as trace, and in the reports."""
    _, result, out = found
    failed = result.failed
    assert [r["clause"] for r in failed] == [result.clause]
    assert failed[0]["spec"] == "explore"
    assert failed[0]["failure"]["step"] == len(result.steps)
    summary = json.loads((out / "summary.json").read_text())
    assert {v["spec"] for v in summary["verdicts"]} == {"explore"}
    for report in ("junit.xml", "index.html"):
        assert (out / report).is_file()
    assert (out / "explore" / "hypothesis-db").is_dir()


def test_rerun_replays_the_failure_first(tmp_path: Path) -> None:
    """A second exploration in the same folder replays the saved failure before generating, whatever the seed."""
    target = "sequence_drivers:ListingTombstone"
    first = explore(target, out=tmp_path, examples=300, steps=50, seed_value=SEED, shrink_seconds=SHRINK, say=_quiet)
    again = explore(target, out=tmp_path, examples=300, steps=50, seed_value=SEED + 1, shrink_seconds=SHRINK,
                    say=_quiet)  # fmt: skip
    assert again.exit_code == 1
    assert again.case_file == first.case_file
    assert again.sequences < first.sequences


@pytest.mark.parametrize("target", ["memory", "fs", "s3@moto", "s3@moto-server", "s3@ministack", "dropbox@emulator"])
def test_bundled_target_has_no_failure(target: str, tmp_path: Path) -> None:
    """A small fixed budget on each embedded target: no failure, one passed record per clause, nothing left over."""
    _available(target)
    result = explore(target, out=tmp_path, examples=25, steps=30, seed_value=SEED, say=_quiet)
    assert result.exit_code == 0, result.failure
    written = records(tmp_path)
    assert {r["outcome"] for r in written} == {"passed"}
    assert {r["clause"] for r in written} == set(result.clauses)
    assert not (tmp_path / "found").exists()
    assert all(not r["leftovers"] for r in written)
    journal = [json.loads(line) for f in (tmp_path / "ledger").glob("*.jsonl") for line in f.read_text().splitlines()]
    created = {e["path"] for e in journal if e["event"] == "created"}
    assert created and created == {e["path"] for e in journal if e["event"] == "removed"}
    assert all(p.startswith(f"gspc-{result.run_id}/explore/") for p in created)


def _available(target: str) -> None:
    try:
        open_target(Target.parse(target)).close()
    except TargetUnavailable as exc:
        pytest.skip(str(exc))


class Hangs:
    """A driver whose read never returns in time."""

    name = "hangs"

    def capabilities(self) -> Capabilities:
        return Capabilities(operations=frozenset({"read"}))

    def read(self, path: str, **pairs: Any) -> bytes:
        time.sleep(30)
        return b""


def test_step_timeout_fails_the_step(tmp_path: Path) -> None:
    """A step past --timeout fails its clause, is recorded as timed out, and ends the exploration."""
    result = explore("test_explore:Hangs", out=tmp_path, examples=5, steps=5, seed_value=SEED, timeout=0.3,
                     say=_quiet)  # fmt: skip
    assert result.exit_code == 1
    (failed,) = records(tmp_path)
    assert failed["reason"] == "timed out"
    assert failed["steps"][-1]["error"]["type"] == "CaseTimeout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "unknown driver 'nosuch'"),
        (["memory", "--option", "noequals"], "--option 'noequals': expected KEY=VALUE"),
        (["memory", "--option", "nosuch=1"], "bad options"),
        (["memory", "--examples", "0"], "--examples must be positive"),
        (["memory", "--shrink-time", "-1"], "--shrink-time must be positive"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    """Bad input: exit 2 and one line naming the problem, never a traceback."""
    done = gspc("explore", *args, "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_run_reports(tmp_path: Path) -> None:
    """`gspc explore memory` with a small budget exits 0 and says what it explored."""
    done = gspc("explore", "memory", "--examples", "5", "--steps", "10", "--seed", "3", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "seed 3" in done.stdout and "no failure" in done.stdout


def test_model_unknown_until_defined() -> None:
    """Delete during an unfinished append leaves the path unknown; a write defines it again."""
    model = Model()
    handle, _ = model.create_append("x")
    assert model.read("x", {}) == []  # before commit: implementation-defined
    model.delete("x")
    assert model.paths["x"] is UNKNOWN and not handle.open
    assert model.write_append(handle, Payload(3, 1)) == []
    model.write("x", Payload(3, 2))
    assert isinstance(model.paths["x"], Known)
    model.delete("x")
    assert model.paths["x"] is ABSENT
    assert [c.clause for c in model.read("x", {})] == ["delete.removes"]


def test_model_committed_bytes() -> None:
    """A committed session holds exactly its chunks, in order, under append.content-order."""
    model = Model()
    handle, _ = model.create_append("a/b")
    model.write_append(handle, Payload(3, 1))
    model.write_append(handle, Payload(10, 2))
    model.commit_append(handle)
    (check,) = model.read("a/b", {})
    assert check.clause == "append.content-order"
    assert check.expect == {"bytes": {"concat": [{"random": 3, "seed": 1}, {"random": 10, "seed": 2}]}}
    assert model.commit_append(handle) == []  # commit twice: implementation-defined


def test_certify_adds_the_exploration(tmp_path: Path) -> None:
    """`gspc certify --explore N` records the budget, seed and result, and the certificate still verifies."""
    done = gspc("certify", "memory", "--explore", "5", "--out", "cert", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    assert cert["explore"]["budget"]["examples"] == 5
    assert cert["explore"]["outcome"] == "passed" and cert["explore"]["folder"] == "exploration"
    assert (tmp_path / "cert" / "exploration" / "summary.json").is_file()
    verified = gspc("verify", "cert/certificate.json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout
