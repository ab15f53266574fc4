"""The run always ends, with a complete report and an honest exit code, whatever the driver or the world does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import TESTS, gspc, records, summary

VICTIM = "delete::delete-existing[unruly_drivers:{name}-size=0-path=flat]"
# a timeout well above a healthy case (milliseconds) even on a loaded machine, and short enough to wait out
ONLY = ["--spec", "delete", "--timeout", "3", "--out", "out", "--", "-k", "delete-existing or delete-missing"]


def run(name: str, *extra: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return gspc("run", "--driver", f"unruly_drivers:{name}", *extra, *ONLY, cwd=cwd, env=env, timeout=120)


def outcomes(out: Path) -> dict[str, tuple[str, str | None]]:
    return {r["nodeid"]: (r["outcome"], r["reason"]) for r in records(out)}


def ran_well(found: dict[str, tuple[str, str | None]]) -> bool:
    """Every case passed or did not apply, and some passed."""
    kinds = {outcome for outcome, _ in found.values()}
    return "passed" in kinds and kinds <= {"passed", "not-applicable"}


def collected(out: Path) -> int:
    return sum(1 for path in (out / "manifest").glob("*.jsonl") for _ in path.open())


@pytest.mark.parametrize("name", ["DeafStat", "SpinsInC"])
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_case_that_ignores_its_deadline_is_ended_by_the_watchdog_and_the_run_goes_on(
    name: str, workers: list[str], tmp_path: Path
) -> None:
    done = run(name, *workers, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    found = outcomes(tmp_path / "out")
    outcome, reason = found.pop(VICTIM.format(name=name))
    assert outcome == "failed" and "did not return within 3 s" in reason
    assert ran_well(found)  # every other case ran, in a fresh process
    assert len(records(tmp_path / "out")) == len(set(json.loads(line)["nodeid"] for line in _manifest(tmp_path)))
    assert (tmp_path / "out" / "index.html").is_file() and summary(tmp_path / "out")["verdict"] == "non-conformant"


def _manifest(tmp_path: Path) -> list[str]:
    return [line for path in (tmp_path / "out" / "manifest").glob("*.jsonl") for line in path.open()]


@pytest.mark.parametrize("name", ["SegfaultStat", "KillsItself"])
def test_a_driver_that_ends_its_own_process_fails_that_case(name: str, tmp_path: Path) -> None:
    done = run(name, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    found = outcomes(tmp_path / "out")
    outcome, reason = found.pop(VICTIM.format(name=name))
    assert outcome == "failed", reason
    assert ran_well(found)


def test_a_kill_from_outside_is_incomplete_never_blamed_on_the_driver(tmp_path: Path) -> None:
    cli = start_slow_run(tmp_path)
    victim = _wait_for_running(tmp_path / "out", VICTIM.format(name="SlowStat"))
    os.kill(victim, signal.SIGKILL)
    output = cli.communicate(timeout=120)[0].decode(errors="replace")
    assert cli.returncode == 3, output[-2000:]
    found = outcomes(tmp_path / "out")
    outcome, reason = found.pop(VICTIM.format(name="SlowStat"))
    assert outcome == "error" and "killed from outside" in reason
    assert ran_well(found)  # the rest ran in a fresh process
    assert summary(tmp_path / "out")["verdict"] == "incomplete"


def start_slow_run(cwd: Path) -> subprocess.Popen:
    """A run whose first delete-existing case takes 30 s (within its 60 s timeout), in the background."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    environ = {**os.environ, "PYTHONPATH": path, "GSPC_TEST_SLOW": "30"}
    command = [sys.executable, "-m", "conformance", "run", "--driver", "unruly_drivers:SlowStat", *ONLY]
    command[command.index("--timeout") + 1] = "60"
    return subprocess.Popen(command, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_running(out: Path, nodeid: str) -> int:
    """The pid of the process once it has started the case."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in (out / "records").glob("*.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record["nodeid"] == nodeid and record["outcome"] == "running":
                    return record["pid"]
        time.sleep(0.05)
    raise AssertionError(f"{nodeid} never started")


def test_ctrl_c_stops_the_run_as_incomplete_with_a_report(tmp_path: Path) -> None:
    cli = start_slow_run(tmp_path)
    _wait_for_running(tmp_path / "out", VICTIM.format(name="SlowStat"))
    cli.send_signal(signal.SIGINT)
    output = cli.communicate(timeout=60)[0].decode(errors="replace")
    assert cli.returncode == 3, output[-2000:]
    assert "Traceback" not in output
    found = outcomes(tmp_path / "out")
    assert found[VICTIM.format(name="SlowStat")][0] == "error"
    assert all("interrupted" in reason for outcome, reason in found.values() if outcome == "error")
    assert summary(tmp_path / "out")["verdict"] == "incomplete" and (tmp_path / "out" / "index.html").is_file()


@pytest.mark.parametrize("name", ["DeafClose", "LeavesThread"])
def test_a_driver_that_will_not_let_go_still_gets_its_verdict(name: str, tmp_path: Path) -> None:
    done = run(name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert ran_well(outcomes(tmp_path / "out"))
    assert (tmp_path / "out" / "index.html").is_file()
    assert "watchdog" in done.stdout or "did not exit" in done.stdout


def test_a_check_access_that_hangs_stops_the_run_with_one_line(tmp_path: Path) -> None:
    done = run("DeafCheckAccess", cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr
    assert "opening did not finish within 3 s" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_run_that_stops_early_reports_the_cases_it_never_ran(tmp_path: Path) -> None:
    done = gspc("run", "--driver", "engine_drivers:DeleteMissingFails", "--spec", "delete", "--out", "out", "--", "-x",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:]
    found = outcomes(tmp_path / "out")
    never = [n for n, (outcome, reason) in found.items() if outcome == "error" and "never ran" in reason]
    assert never and len(found) == collected(tmp_path / "out")


def test_stale_outputs_of_an_earlier_run_never_survive(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "junit.xml").write_text('<testsuite tests="999" failures="0"/>')
    (out / "summary.json").write_text('{"verdict": "conformant", "exit_code": 0}')
    (out / "records").mkdir()
    (out / "records" / "gw7.jsonl").write_text('{"outcome": "passed"}\n')
    done = run("SegfaultStat", cwd=tmp_path)
    assert done.returncode == 1
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == len(records(out)) and int(suite.get("failures")) == 1
    assert not (out / "records" / "gw7.jsonl").exists()


def test_a_run_that_selects_no_case_says_so(tmp_path: Path) -> None:
    done = gspc(
        "run", "--driver", "memory", "--spec", "delete", "--out", "out", "--", "-k", "no-such-case", cwd=tmp_path
    )
    assert done.returncode == 4, done.stdout[-2000:]
    assert "no case selected" in done.stdout + done.stderr
