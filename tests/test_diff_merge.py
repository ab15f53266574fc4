"""``gspc diff``, ``gspc report --merge`` and ``gspc run --rerun-failed`` on real runs."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest
from conftest import gspc, records, summary
from tests_support import write_spec

from conformance.records import failed_clauses
from conformance.spec.loader import schema

BROKEN = "engine_drivers:DeleteMissingFails"
WAIVERS = f"""target: {BROKEN}
waivers:
  - clause: delete.missing-ok
    reason: raises on missing paths
    link: https://example.test/1
"""
# labels with spaces, unicode, '::' and brackets: a re-run must select them without escaping
ODD_PATHS = '{"plain": p, "with space": "a b", "路径 x": "路径", "a::b[c]": "abc"}'
ODD_SPEC = f"""id: GSP-900
title: Odd labels
version: 1
source: tests/test_diff_merge.py
clauses:
  - {{id: odd.missing-ok, rule: DEL-2, level: MUST, status: adopted, text: Deleting a missing path works., source: t}}
  - {{id: odd.removes, rule: DEL-3, level: MUST, status: adopted, text: A written object can be deleted., source: t}}
cases:
  - id: missing
    clause: odd.missing-ok
    title: Delete a missing path.
    requires: [delete]
    params: {{path: {ODD_PATHS}}}
    steps:
      - delete: {{path: "{{path}}"}}
  - id: written
    clause: odd.removes
    title: Write, then delete.
    requires: [write, delete]
    params: {{path: {ODD_PATHS}}}
    steps:
      - write: {{path: "{{path}}", data: x}}
      - delete: {{path: "{{path}}"}}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real runs in one folder: memory and the broken driver on delete, with and without a waiver, and shards."""
    work = tmp_path_factory.mktemp("runs")
    (work / "known.yaml").write_text(WAIVERS, encoding="utf-8")
    plans = {
        "memory": ("--driver", "memory", "--spec", "delete"),
        "broken": ("--driver", BROKEN, "--spec", "delete"),
        "waived": ("--driver", BROKEN, "--spec", "delete", "--known-issues", "known.yaml"),
        "append": ("--driver", BROKEN, "--spec", "append"),
        "both": ("--driver", BROKEN, "--spec", "delete", "--spec", "append"),
    }
    with ThreadPoolExecutor(3) as pool:  # independent runs in separate folders: overlap their start-up
        done = dict(zip(plans, pool.map(lambda o: gspc("run", *plans[o], "--out", o, cwd=work), plans), strict=True))
    for out, result in done.items():
        assert result.returncode in (0, 1), f"{out}: {result.stderr}"
    return work


def _failed(out: Path) -> list[dict]:
    return [r for r in records(out) if r["outcome"] in ("failed", "error")]


def test_diff_lists_the_new_failures_of_a_broken_driver(runs: Path) -> None:
    done = gspc("diff", "memory", "broken", cwd=runs)
    assert done.returncode == 1, done.stderr
    # each failed clause is a change of its own: the case's, and the invariant errors.envelope beside it
    shown = sorted(m.groups() for m in re.finditer(r"^    (delete::\S+)  \[(.+?)\]  ", done.stdout, re.M))
    failed = sorted((r["nodeid"], c["clause"]) for r in _failed(runs / "broken") for c in failed_clauses(r))
    assert shown == failed and any(clause == "errors.envelope" for _, clause in failed)
    assert "\n  errors MUST\n" in done.stdout  # grouped under its own spec (no errors case ran: no spec id)
    assert f"comparing target memory (old) with {BROKEN} (new)" in done.stdout
    assert f"{BROKEN}  delete: conformant -> non-conformant" in done.stdout
    assert "  GSP-46 delete MUST" in done.stdout and "  GSP-46 delete SHOULD" in done.stdout  # grouped by level


def test_diff_the_other_way_lists_fixes_and_exits_0(runs: Path) -> None:
    done = gspc("diff", "broken/records.jsonl", "memory", cwd=runs)
    assert done.returncode == 0, done.stdout
    fixed = sum(len(failed_clauses(r)) for r in _failed(runs / "broken"))  # every failed clause, invariants too
    assert f"0 new failures, {fixed} fixed" in done.stdout


def test_a_waiver_turns_failures_into_fixes_without_new_failures(runs: Path) -> None:
    done = gspc("diff", "broken", "waived", cwd=runs)
    assert done.returncode == 0, done.stdout
    # the waiver covers delete.missing-ok only: that clause is fixed, the case still fails errors.envelope
    waived = [r for r in records(runs / "waived") if any(c.get("waiver") for c in failed_clauses(r))]
    assert waived and all(f"{r['nodeid']}  [delete.missing-ok]  failed -> waived" in done.stdout for r in waived)
    assert {r["outcome"] for r in waived} == {"failed"}
    assert all(r["reason"].endswith("; not waived: errors.envelope") for r in waived)
    assert f"{len(waived)} fixed" in done.stdout and "[errors.envelope]" not in done.stdout


def test_markdown_for_a_pull_request(runs: Path) -> None:
    done = gspc("diff", "memory", "broken", "--markdown", cwd=runs)
    assert done.returncode == 1
    text = done.stdout
    assert text.startswith("### :x: GSP conformance")
    clauses = sum(len(failed_clauses(r)) for r in _failed(runs / "broken"))  # one row per failed clause
    assert f"#### New failures ({clauses})" in text and "| spec | level | clause | case | old → new | detail |" in text
    assert f"| {BROKEN} | delete | conformant | **non-conformant** |" in text


def test_added_and_removed_cases(runs: Path) -> None:
    grown = gspc("diff", "broken", "both", cwd=runs)
    appended = records(runs / "append")
    assert f"0 new failures, 0 fixed, 0 changed, {len(appended)} added, 0 removed" in grown.stdout
    assert grown.returncode == 0
    shrunk = gspc("diff", "both", "broken", cwd=runs)
    assert f"{len(appended)} removed" in shrunk.stdout and shrunk.returncode == 0


def test_diff_of_a_missing_run_is_a_usage_error(runs: Path) -> None:
    done = gspc("diff", "memory", "nowhere", cwd=runs)
    assert done.returncode == 2 and "nowhere" in done.stderr


def test_merged_shards_equal_one_combined_run(runs: Path) -> None:
    done = gspc("report", "--merge", "broken", "append", "--out", "merged", cwd=runs)
    assert done.returncode == 1, done.stderr  # the merged verdict's exit code: delete is non-conformant
    merged, combined = summary(runs / "merged"), summary(runs / "both")
    jsonschema.validate(merged, schema("summary"))
    assert merged["verdicts"] == combined["verdicts"] and merged["totals"] == combined["totals"]
    outcomes = {r["nodeid"]: r["outcome"] for r in records(runs / "merged")}
    assert outcomes == {r["nodeid"]: r["outcome"] for r in records(runs / "both")}


def test_merge_refuses_to_write_into_a_run_it_reads(runs: Path) -> None:
    done = gspc("report", "--merge", "broken", "append", "--out", "append", cwd=runs)
    assert done.returncode == 2 and "--out" in done.stderr


def test_rerun_selects_exactly_the_failed_cases_with_odd_params(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    write_spec(tmp_path / "specs", ODD_SPEC, "odd.yaml")
    first = gspc("run", "--driver", BROKEN, "--specs-dir", "specs", "--out", "first", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    failed = {r["nodeid"] for r in _failed(tmp_path / "first")}
    assert len(failed) == 4 and any("路径 x" in n for n in failed) and any("a::b[c]" in n for n in failed)
    for workers in ("0", "2"):
        again = gspc("run", "--rerun-failed", "first", "--specs-dir", "specs", "--out", f"again{workers}",
                     "-n", workers, cwd=tmp_path)  # fmt: skip
        assert again.returncode == 1, again.stderr
        assert {r["nodeid"] for r in records(tmp_path / f"again{workers}")} == failed
        assert "not re-run" not in again.stderr


def test_rerun_of_a_clean_run_runs_nothing(runs: Path, tmp_path: Path) -> None:
    done = gspc("run", "--rerun-failed", str(runs / "memory"), "--out", "again", cwd=tmp_path)
    assert done.returncode == 0 and "nothing to re-run" in done.stdout
    assert not (tmp_path / "again").exists()


def test_rerun_refuses_to_overwrite_the_run_it_repeats(runs: Path) -> None:
    done = gspc("run", "--rerun-failed", "broken", "--out", "broken", cwd=runs)
    assert done.returncode == 2 and "overwrite" in done.stderr


def test_a_rerun_merged_after_its_run_replaces_its_failures(runs: Path, tmp_path: Path) -> None:
    rerun = gspc("run", "--rerun-failed", str(runs / "broken"), "--known-issues", str(runs / "known.yaml"),
                 "--out", "rerun", cwd=tmp_path)  # fmt: skip
    assert rerun.returncode == 1, rerun.stderr  # the waiver covers one clause; the others still fail
    merged = gspc("report", "--merge", str(runs / "broken"), "rerun", "--out", "merged", cwd=tmp_path)
    assert merged.returncode == 1, merged.stderr
    outcomes = {r["nodeid"]: r["outcome"] for r in records(tmp_path / "merged")}
    assert outcomes == {r["nodeid"]: r["outcome"] for r in records(runs / "waived")}
