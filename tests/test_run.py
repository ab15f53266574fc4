"""Whole runs through ``gspc run``: verdicts, records, JUnit, xdist, waivers, timeouts, cleanup."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from conftest import gspc, records, summary

from conformance.spec.loader import load_specs, schema, spec_files


def test_memory_is_conformant_on_every_spec(memory_fs_run) -> None:
    done, out = memory_fs_run
    verdicts = {v["spec"]: v["verdict"] for v in summary(out)["verdicts"] if v["target"] == "memory"}
    assert verdicts == {s.name: "conformant" for s in load_specs(spec_files())}, done.stdout[-3000:]
    assert not [r for r in records(out) if r["target"] == "memory" and r["waiver"]]


def test_fs_gets_an_honest_verdict_on_every_spec(memory_fs_run) -> None:
    _, out = memory_fs_run
    fs = [r for r in records(out) if r["target"] == "fs"]
    assert {r["spec"] for r in fs} == {s.name for s in load_specs(spec_files())}
    assert not [r for r in fs if r["outcome"] == "error"]
    for r in fs:
        if r["outcome"] == "failed":
            assert r["failure"]["expected"] and r["failure"]["actual"]


def test_outputs_match_their_schemas(memory_fs_run) -> None:
    _, out = memory_fs_run
    jsonschema.validate(summary(out), schema("summary"))
    validator = jsonschema.Draft202012Validator(schema("record"))
    for record in records(out):
        validator.validate(record)


def test_node_ids_are_stable_and_readable(memory_fs_run) -> None:
    _, out = memory_fs_run
    ids = {r["nodeid"] for r in records(out)}
    assert "delete::delete-missing[memory-path=flat]" in ids
    assert "delete::delete-existing[fs-size=4KiB-path=unicode]" in ids


def test_junit_carries_clause_and_level(memory_fs_run) -> None:
    _, out = memory_fs_run
    case = ET.parse(out / "junit.xml").find(".//testcase[@name='delete-missing[memory-path=flat]']")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["clause"] == "delete.missing-ok" and props["level"] == "MUST" and props["rule"] == "DEL-2"


def test_terminal_matrix_shows_verdicts(memory_fs_run) -> None:
    done, _ = memory_fs_run
    assert "gsp-conformance" in done.stdout
    assert any(line.startswith("memory ") and " ok" in line for line in done.stdout.splitlines())


def test_xdist_gives_identical_results(memory_fs_run, tmp_path: Path) -> None:
    _, serial_out = memory_fs_run
    done = gspc("run", "--target", "memory", "--target", "fs", "--out", "out", "-n", "2", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    distributed = records(tmp_path / "out")
    assert {r["worker"] for r in distributed} == {"gw0", "gw1"}
    assert {r["nodeid"]: r["outcome"] for r in distributed} == {r["nodeid"]: r["outcome"] for r in records(serial_out)}
    assert len({r["run_id"] for r in distributed}) == 1
    firsts = {json.loads(path.open().readline())["nodeid"] for path in (tmp_path / "out" / "records").glob("gw*.jsonl")}
    assert "storager::list-pages[memory]" in firsts  # the longest case (23 writes) starts first, not last


def test_xdist_workers_start_with_runs_of_like_weight_each_longest_first() -> None:
    from conformance.plugin import dealt

    weights = [90, 3, 40, 5, 5, 12, 1, 2, 30, 8, 7, 4, 6, 2, 9]
    order = dealt(list(range(len(weights))), 4, weights.__getitem__)
    assert sorted(order) == list(range(len(weights)))
    runs, start = [], 0
    for size in (3, 4, 4, 4):  # worksteal's first split of 15 items: 15 // 4, then 12 // 3, 8 // 2, 4
        runs.append([weights[i] for i in order[start : start + size]])
        start += size
    assert all(run == sorted(run, reverse=True) for run in runs)  # a worker's queue ends with its short cases
    assert sorted(run[0] for run in runs) == [12, 30, 40, 90]  # the four longest start at once, one a worker
    longest = next(run for run in runs if run[0] == 90)
    assert longest == [90, 2, 1]  # the longest case's run is filled with the lightest
    others = [sum(run) for run in runs if run is not longest]
    assert max(others) < 2 * min(others), others


def test_gspc_knows_pytests_refusals_by_their_exit_codes_without_importing_pytest() -> None:
    from conformance import cli

    assert cli.REFUSED == (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    code = "import sys, conformance.cli; print('pytest' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_level_and_spec_selection(tmp_path: Path) -> None:
    done = gspc("run", "--driver", "memory", "--spec", "GSP-46", "--level", "MUST", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    found = records(tmp_path / "out")
    assert found and {(r["spec"], r["level"]) for r in found} == {("delete", "MUST")}


def test_non_conformant_driver_exits_1_naming_the_clause(tmp_path: Path) -> None:
    done = gspc(
        "run", "--driver", "engine_drivers:DeleteMissingFails", "--spec", "delete", "--out", "out", cwd=tmp_path
    )
    assert done.returncode == 1
    assert "delete.missing-ok (MUST, DEL-2)" in done.stdout
    failed = {r["clause"] for r in records(tmp_path / "out") if r["outcome"] == "failed"}
    # a repeated delete of one path meets the same bug, so the repeatability clauses fail too, and so does deleting
    # a path that only has descendants (delete.one-object)
    assert failed == {"delete.missing-ok", "delete.missing-parent-ok", "delete.repeatable", "delete.append-unfinished",
                      "delete.one-object"}  # fmt: skip


def _known_issues(path: Path, *entries: str) -> Path:
    path.write_text("target: engine_drivers:DeleteMissingFails\nwaivers:\n" + "".join(entries), encoding="utf-8")
    return path


def test_waivers_turn_failures_into_waived(tmp_path: Path) -> None:
    issues = _known_issues(
        tmp_path / "known.yaml",
        "  - clause: delete.missing-ok\n    reason: raises on missing paths\n    link: https://example.test/1\n",
        "  - case: delete-missing-parent\n    reason: also for parents\n    link: https://example.test/2\n",
        "  - case: delete-keeps-siblings\n    reason: thought to fail\n    link: https://example.test/3\n",
        "  - clause: delete.repeatable\n    reason: second delete raises\n    link: https://example.test/4\n",
        "  - clause: delete.append-unfinished\n    reason: second delete raises\n    link: https://example.test/5\n",
        "  - case: delete-keeps-descendants\n    reason: a path with only descendants is missing\n    link: https://example.test/6\n",
    )
    done = gspc("run", "--driver", "engine_drivers:DeleteMissingFails", "--spec", "delete", "--known-issues",
                str(issues), "--out", "out", cwd=tmp_path)  # fmt: skip
    # the errors come from stat inside delete, with op='stat': a clause waiver of delete waives no envelope breach,
    # so only a case waiver (it covers all of its case's failures) makes such a case waived
    assert done.returncode == 1, done.stdout
    by_case = {}
    for r in records(tmp_path / "out"):
        by_case.setdefault(r["case"], set()).add(r["outcome"])
    assert by_case["delete-missing"] == {"failed"} and by_case["delete-missing-parent"] == {"waived"}
    assert by_case["delete-keeps-siblings"] == {"unexpectedly-passed"}
    partly = next(r for r in records(tmp_path / "out") if r["case"] == "delete-missing")
    assert partly["waiver"]["link"] == "https://example.test/1"
    assert partly["reason"] == (
        "waived: delete.missing-ok (known issue: raises on missing paths (https://example.test/1)); "
        "not waived: errors.envelope"
    )
    verdicts = {v["spec"]: v for v in summary(tmp_path / "out")["verdicts"]}
    assert verdicts["delete"]["verdict"] == "conformant-with-warnings"
    assert verdicts["errors"]["verdict"] == "non-conformant" and set(verdicts["errors"]["failed_clauses"]) == {
        "errors.envelope"
    }


def test_expired_waiver_no_longer_hides_the_failure(tmp_path: Path) -> None:
    issues = _known_issues(
        tmp_path / "known.yaml",
        "  - clause: delete.missing-ok\n    reason: old\n    link: https://example.test/1\n    expires: 2020-01-01\n",
    )
    done = gspc("run", "--driver", "engine_drivers:DeleteMissingFails", "--spec", "delete", "--known-issues",
                str(issues), "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    missing = [r for r in records(tmp_path / "out") if r["case"] == "delete-missing"]
    assert {r["outcome"] for r in missing} == {"failed"} and "expired" in missing[0]["reason"]


def test_misspelt_known_issues_key_is_a_usage_error(tmp_path: Path) -> None:
    issues = _known_issues(tmp_path / "known.yaml", "  - clause: delete.missing-ok\n    reson: typo\n    link: x\n")
    done = gspc("run", "--driver", "memory", "--spec", "delete", "--known-issues", str(issues), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{issues}:4: waivers/0: unknown key 'reson'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_hung_case_times_out_and_the_run_goes_on(tmp_path: Path) -> None:
    only = "delete-existing and flat or delete-twice or delete-missing"
    done = gspc("run", "--driver", "engine_drivers:HangingStat", "--spec", "delete", "--timeout", "1",
                "--out", "out", "--", "-k", only, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    outcomes = {r["case"]: (r["outcome"], r["reason"], r["failure"]) for r in records(tmp_path / "out")}
    outcome, reason, failure = outcomes["delete-existing"]
    assert (outcome, reason, failure["step"], failure["op"]) == ("failed", "timed out", 3, "stat")
    assert outcomes["delete-twice"][0] == "passed" and outcomes["delete-missing"][0] == "passed"


def test_cleanup_is_exact_and_stays_inside_the_run(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    (root / "foreign").mkdir(parents=True)
    (root / "foreign" / "keep.txt").write_text("not ours")
    (root / "top.txt").write_text("not ours either")
    done = gspc("run", "--target", f"engine_drivers:FsStatNoSize@{root}", "--out", "out", cwd=tmp_path)
    assert any(r["outcome"] == "failed" for r in records(tmp_path / "out")), done.stdout  # cleanup after failures too
    assert (root / "foreign" / "keep.txt").read_text() == "not ours" and (root / "top.txt").exists()
    leftover_files = [p for p in root.rglob("*") if p.is_file() and p.name not in ("keep.txt", "top.txt")]
    assert leftover_files == []
    assert all(r["leftovers"] == [] for r in records(tmp_path / "out"))


def test_clean_finishes_an_interrupted_run(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    inside = root / "gspc-RUN1" / "delete" / "x"
    inside.parent.mkdir(parents=True)
    inside.write_text("left by a crash")
    outside = root / "precious.txt"
    outside.write_text("never ours")
    target = f"fs@{root}"
    journal = tmp_path / "out" / "ledger" / "RUN1-gw0.jsonl"
    journal.parent.mkdir(parents=True)
    lines = [
        {"event": "open", "run_id": "RUN1", "target": target, "path": "", "options": {}},
        {"event": "created", "run_id": "RUN1", "target": target, "path": "gspc-RUN1/delete/x"},
        {"event": "created", "run_id": "RUN1", "target": target, "path": "precious.txt"},
    ]
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"event": "crea')
    done = gspc("clean", "--run-id", "RUN1", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not inside.exists() and outside.read_text() == "never ours"
    again = gspc("clean", "--run-id", "RUN1", "--out", "out", cwd=tmp_path)
    assert "nothing left to clean" in again.stdout


def test_a_crashing_driver_is_a_recorded_failure(tmp_path: Path) -> None:
    done = gspc("run", "--driver", "engine_drivers:CrashingStat", "--spec", "delete", "--out", "out", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    crashed = [r for r in records(tmp_path / "out") if r["outcome"] == "failed"]
    assert [r["nodeid"] for r in crashed] == ["delete::delete-existing[engine_drivers:CrashingStat-size=0-path=flat]"]
    assert "the driver ended its own process (os._exit(13))" in crashed[0]["reason"]
    assert summary(tmp_path / "out")["verdict"] == "non-conformant"


def test_a_crashing_worker_does_not_stop_the_run(tmp_path: Path) -> None:
    done = gspc("run", "--driver", "engine_drivers:CrashingStat", "--spec", "delete", "-n", "2", "--out", "out",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    found = records(tmp_path / "out")
    assert len(found) == len(records_of_delete_spec())
    assert [r["case"] for r in found if r["outcome"] == "failed"] == ["delete-existing"]


def records_of_delete_spec() -> list[str]:
    (spec,) = [s for s in load_specs(spec_files()) if s.name == "delete"]
    return [f"{case.id}-{i}" for case in spec.cases for i, _ in enumerate(case.expansions())]


def test_a_case_that_times_out_skips_its_cleanup_and_leaves_it_journalled(tmp_path: Path) -> None:
    done = gspc("run", "--driver", "engine_drivers:HangingEverything", "--spec", "delete", "--timeout", "1",
                "--out", "out", "--", "-k", "delete-existing and flat", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    timed_out = [r for r in records(tmp_path / "out") if r["reason"] == "timed out"]
    assert timed_out and all(r["leftovers"] for r in timed_out)
    assert all(r["failure"]["op"] == "delete" for r in timed_out)  # the delete step itself hung


def readme_driver() -> str:
    """The example driver of the README, as a newcomer would copy it."""
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    start = text.index("```python\n# mystore.py")
    return text[start + len("```python\n") : text.index("```", start + 10)]


def test_the_readme_driver_is_found_in_the_working_folder_and_conformant(tmp_path: Path) -> None:
    (tmp_path / "mystore.py").write_text(readme_driver())
    done = gspc("run", "--driver", "mystore:MyDriver", "--option", "bucket=b1", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    verdicts = {v["spec"]: v["verdict"] for v in summary(tmp_path / "out")["verdicts"]}
    # it implements no append and no SSE: those specs checked only that it refuses them
    assert verdicts == {"append": "refuses-correctly", "sse": "refuses-correctly", "delete": "conformant",
                        "errors": "conformant", "storager": "conformant"}  # fmt: skip
