"""A case that fails its own clause and an invariant at once, end to end through ``gspc run``: waived only
when both clauses are, and named by both in the records, HTML, certificate, diff and Allure results."""

from __future__ import annotations

import importlib.util
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import gspc, records, summary
from test_html_report import browser, open_report  # noqa: F401 - fixtures used below

from conformance.records import failed_clauses
from conformance.report import certificate, diff, html, terminal
from conformance.report import summary as summary_report
from conformance.spec.loader import schema
from conformance.verdict import clause_outcomes, compute

# ---- synthetic records: each view on its own ----

ALLURE = importlib.util.find_spec("allure_pytest") is not None  # an optional extra
needs_allure = pytest.mark.skipif(not ALLURE, reason="allure-pytest is not installed")
TAXONOMY_WAIVER = {"reason": "raw SDK errors", "link": "https://tracker.example/2", "file": "K", "expires": None,
                   "covers": "errors.taxonomy"}  # fmt: skip


def synthetic(case: str = "c1", own: str | None = "failed", taxonomy: str | None = "failed", **fields: Any) -> dict:
    """A delete record whose own clause and errors.taxonomy (of spec errors) went as given (None: did not fail)."""
    clauses = []
    if own:
        clauses.append({"clause": "delete.missing-ok", "spec": "delete", "rule": "DEL-2", "level": "MUST", "step": 1,
                        "op": "delete", "expected": "success", "actual": "KeyError: 'x'"})  # fmt: skip
    if taxonomy:
        clauses.append({"clause": "errors.taxonomy", "spec": "errors", "rule": "ERR-3", "level": "MUST", "step": 1,
                        "op": "delete", "expected": "a taxonomy error",
                        "actual": "raw builtins.KeyError escaped"})  # fmt: skip
        if taxonomy == "waived":
            clauses[-1]["waiver"] = TAXONOMY_WAIVER
    failure = (
        {**{k: clauses[0][k] for k in ("step", "op", "expected", "actual")}, "clauses": clauses} if clauses else None
    )
    outcome = "failed" if own == "failed" or taxonomy == "failed" else "waived" if clauses else "passed"
    return {
        "run_id": "r1", "target": "t", "driver": "t", "spec": "delete", "spec_id": "GSP-46", "spec_version": 1,
        "spec_sha256": "0" * 64, "spec_title": "Idempotent delete", "clause": "delete.missing-ok", "rule": "DEL-2",
        "level": "MUST", "status": "adopted", "clause_text": "Deleting a missing path succeeds.", "case": case,
        "title": "t", "nodeid": f"delete::{case}[t]", "params": {}, "outcome": outcome, "reason": None,
        "duration": 0.1, "steps": [{"op": "delete", "args": {"path": "x"}, "error": {"type": "KeyError"}}],
        "failure": failure, "behaviour": None, "waiver": TAXONOMY_WAIVER if taxonomy == "waived" else None,
        "leftovers": [], "worker": "main", **fields,
    }  # fmt: skip


def test_clause_outcomes_judge_each_clause_as_it_went() -> None:
    assert clause_outcomes(synthetic()) == [
        ("delete.missing-ok", "failed", failed_clauses(synthetic())[0]),
        ("errors.taxonomy", "failed", failed_clauses(synthetic())[1]),
    ]
    assert [o for _, o, _ in clause_outcomes(synthetic(own=None))] == ["passed", "failed"]  # the own clause held
    assert [o for _, o, _ in clause_outcomes(synthetic(taxonomy="waived"))] == ["failed", "waived"]
    assert [o for _, o, _ in clause_outcomes(synthetic(own=None, taxonomy=None))] == ["passed"]
    older = {**synthetic(), "outcome": "waived", "waiver": {**TAXONOMY_WAIVER, "covers": "all"}}  # no per-clause waiver
    assert [o for _, o, _ in clause_outcomes(older)] == ["waived", "waived"]
    odd = {**synthetic(), "outcome": "waived", "waiver": "not a mapping"}  # a foreign file's record
    assert [o for _, o, _ in clause_outcomes(odd)] == ["failed", "failed"]


def test_verdicts_count_the_invariant_under_its_own_spec_as_failed_or_waived() -> None:
    verdicts = {v.spec: v for v in compute([synthetic("c1"), synthetic("c2", taxonomy="waived")])}
    assert dict(verdicts["errors"].counts["MUST"]) == {"failed": 1, "waived": 1}
    assert dict(verdicts["errors"].failed) == {"errors.taxonomy": {"c1"}}
    assert dict(verdicts["errors"].waived) == {"errors.taxonomy": {"c2"}}
    assert verdicts["errors"].verdict == "non-conformant"


def test_html_data_counts_lists_and_names_every_failed_clause() -> None:
    later = {**synthetic("tax", own=None, taxonomy=None), "spec": "errors", "spec_id": "GSP-47", "rule": "ERR-3",
             "clause": "errors.taxonomy", "clause_text": "Only taxonomy errors escape."}  # fmt: skip
    records = [synthetic("c1"), synthetic("c2", taxonomy="waived"), later]
    head, index, _ = html.build(records, summary_report.build("r1", compute(records), records))
    specs = [s["name"] for s in head["specs"]]
    rows = {row[1]: row for row in head["clauses"]}
    assert specs[rows["errors.taxonomy"][0]] == "errors"  # a clause of another spec, under that spec
    assert rows["errors.taxonomy"][5] == "Only taxonomy errors escape."  # its text, from a record of its own case
    outcomes = head["outcomes"]
    agg = {(head["clauses"][c][1], outcomes[o]): n for c, _, o, n in head["agg"]}
    assert agg[("errors.taxonomy", "failed")] == 1 and agg[("errors.taxonomy", "waived")] == 1
    assert agg[("delete.missing-ok", "failed")] == 2 and agg[("errors.taxonomy", "passed")] == 1
    judged = index["FC"][index["fc"][1]]
    assert [(head["clauses"][c][1], outcomes[o]) for c, o, *_ in judged] == [("delete.missing-ok", "failed"),
                                                                             ("errors.taxonomy", "waived")]  # fmt: skip
    step, op, expected, actual, waiver = judged[1][2:]
    assert (step, index["S"][op], index["S"][expected]) == (1, "delete", "a taxonomy error")
    assert "KeyError" in index["S"][actual] and index["W"][waiver]["link"] == "https://tracker.example/2"
    assert index["fc"][2] == -1  # a record that failed nothing carries no list


def test_html_baseline_marks_a_case_that_newly_fails_an_invariant() -> None:
    before, now = [synthetic(taxonomy=None)], [synthetic()]  # failed both times; the invariant fails only now
    head, index, _ = html.build(now, summary_report.build("r1", compute(now), now), before)
    assert [index["changes"][c] for c in index["ch"]] == ["new failure"]
    assert head["baseline"]["counts"]["new failure"] == 1
    _, index, _ = html.build(before, summary_report.build("r1", compute(before), before), now)
    assert [index["changes"][c] for c in index["ch"]] == ["fixed"]


@needs_allure
def test_allure_result_has_a_label_and_link_per_failed_clause() -> None:
    from allure_commons.model2 import TestResult

    from conformance.report import allure_results

    result = TestResult(name="c2", start=0)
    allure_results.decorate(result, synthetic("c2", taxonomy="waived"))
    labels = [(label.name, label.value) for label in result.labels]
    assert [v for n, v in labels if n == "feature"] == ["delete.missing-ok", "errors.taxonomy"]
    assert [v for n, v in labels if n == "tag"] == ["failed: delete.missing-ok", "waived: errors.taxonomy"]
    assert [(link.type, link.url) for link in result.links if link.type == "issue"] == [
        ("issue", "https://tracker.example/2")
    ]
    assert "**MUST errors.taxonomy** (errors, ERR-3) at step 1 delete" in result.description
    assert "(waived: raw SDK errors, https://tracker.example/2)" in result.description
    (step,) = result.steps
    assert step.status == "failed" and step.statusDetails.message.startswith("delete.missing-ok: expected success")
    assert "errors.taxonomy: expected a taxonomy error" in step.statusDetails.message


def test_certificate_marks_each_failed_clause_and_validates(tmp_path: Path) -> None:
    records = [synthetic("c1"), synthetic("c2", taxonomy="waived")]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cert = certificate.build(records, path, summary_report.build("r1", compute(records), records), None)
    jsonschema.validate(cert, schema("certificate"))
    verdicts = {v["spec"]: v for v in cert["verdicts"]}
    assert verdicts["errors"]["clauses"] == {"errors.taxonomy": {"failed": ["c1"], "waived": ["c2"]}}
    assert verdicts["delete"]["clauses"] == {"delete.missing-ok": {"failed": ["c1", "c2"], "waived": []}}
    (waiver,) = cert["waivers"]
    assert (waiver["clause"], waiver["case"], waiver["covered"]) == ("errors.taxonomy", "c2", ["errors.taxonomy"])


def test_diff_shows_an_invariant_that_newly_fails_or_is_fixed_as_that_clause() -> None:
    old, new = [synthetic(taxonomy=None)], [synthetic()]
    (entry,) = diff.compare(old, new).entries
    assert (entry.kind, entry.clause, entry.spec, entry.level, entry.old, entry.new) == (
        "new failure", "errors.taxonomy", "errors", "MUST", "passed", "failed")  # fmt: skip
    assert entry.detail == "step 1 delete: expected a taxonomy error, got raw builtins.KeyError escaped"
    (fixed,) = diff.compare(new, old).entries
    assert (fixed.kind, fixed.clause, fixed.old, fixed.new) == ("fixed", "errors.taxonomy", "failed", "passed")
    (waived,) = diff.compare(new, [synthetic(taxonomy="waived")]).entries
    assert (waived.kind, waived.clause, waived.new) == ("fixed", "errors.taxonomy", "waived")


def test_terminal_names_a_waived_invariant_in_its_own_spec_cell() -> None:
    records = [synthetic("c1", taxonomy="waived")]
    lines = terminal.reasons([v.as_dict() for v in compute(records)], records)
    assert lines == [
        "  t delete: FAIL: MUST failed: delete.missing-ok",
        "  t errors: warn: waived: errors.taxonomy; known issue: raw SDK errors (https://tracker.example/2)",
    ]


# ---- end to end: one gspc run per waiver file ----

DRIVER = "report_drivers:DeleteMissingRaw"
OWN = "  - clause: delete.missing-ok\n    reason: deletes only what exists\n    link: https://tracker.example/1\n"
# an invariant's clause paired with the spec of the cases it fails in (not its own): gspc run accepts it
TAXONOMY = "  - spec: delete\n    clause: errors.taxonomy\n    reason: the SDK error leaks\n    link: https://tracker.example/2\n"
SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The delete spec on memory and on the driver: without waivers, with one of the two clauses, with both."""
    work = tmp_path_factory.mktemp("failed-clauses")
    (work / "one.yaml").write_text(f"target: {DRIVER}\nwaivers:\n{OWN}", encoding="utf-8")
    (work / "both.yaml").write_text(f"target: {DRIVER}\nwaivers:\n{OWN}{TAXONOMY}", encoding="utf-8")
    plans = {
        "memory": ("--driver", "memory"),
        "raw": ("--driver", DRIVER),
        "one": ("--driver", DRIVER, "--known-issues", "one.yaml", *(("--allure", "allure-one") if ALLURE else ())),
        "both": ("--driver", DRIVER, "--known-issues", "both.yaml", *(("--allure", "allure-both") if ALLURE else ())),
    }
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(plans, pool.map(lambda o: gspc("run", *plans[o], "--spec", "delete", "--out", o, cwd=work),
                                        plans), strict=True))  # fmt: skip
    for out, result in done.items():
        assert result.returncode == (0 if out == "memory" else 1), f"{out}: {result.stdout[-2000:]}{result.stderr}"
    return work


def _missing(out: Path) -> list[dict[str, Any]]:
    """The records of the case whose delete of a missing path fails delete.missing-ok and errors.taxonomy."""
    found = [r for r in records(out) if r["case"] == "delete-missing"]
    assert found and all({c["clause"] for c in failed_clauses(r)} == {"delete.missing-ok", "errors.taxonomy"}
                         for r in found)  # fmt: skip
    return found


def _waivers(record: dict[str, Any]) -> dict[str, str | None]:
    return {c["clause"]: (c.get("waiver") or {}).get("link") for c in failed_clauses(record)}


def test_one_failure_trips_the_case_clause_and_an_invariant_of_another_spec(runs: Path) -> None:
    (entry,) = [c for c in failed_clauses(_missing(runs / "raw")[0]) if c["clause"] == "errors.taxonomy"]
    assert entry["spec"] == "errors" and entry["level"] == "MUST" and "raw builtins.KeyError" in entry["actual"]
    assert {r["outcome"] for r in _missing(runs / "raw")} == {"failed"}


def test_a_waiver_of_one_clause_leaves_the_record_failed_and_says_which(runs: Path) -> None:
    for record in _missing(runs / "one"):
        assert record["outcome"] == "failed"
        assert _waivers(record) == {"delete.missing-ok": "https://tracker.example/1", "errors.taxonomy": None}
        assert record["reason"] == ("waived: delete.missing-ok (known issue: deletes only what exists "
                                    "(https://tracker.example/1)); not waived: errors.taxonomy")  # fmt: skip
    verdicts = {v["spec"]: v for v in summary(runs / "one")["verdicts"]}
    assert (
        verdicts["errors"]["verdict"] == "non-conformant" and "errors.taxonomy" in verdicts["errors"]["failed_clauses"]
    )
    assert "delete.missing-ok" not in verdicts["delete"]["failed_clauses"]


def test_waivers_of_both_clauses_make_it_waived(runs: Path) -> None:
    for record in _missing(runs / "both"):
        assert record["outcome"] == "waived"
        assert _waivers(record) == {"delete.missing-ok": "https://tracker.example/1",
                                    "errors.taxonomy": "https://tracker.example/2"}  # fmt: skip
        assert "delete.missing-ok (known issue: deletes only what exists" in record["reason"]
        assert "errors.taxonomy (known issue: the SDK error leaks" in record["reason"]
    verdicts = {v["spec"]: v for v in summary(runs / "both")["verdicts"]}
    assert verdicts["errors"]["verdict"] == "conformant-with-warnings"  # every taxonomy breach is waived
    assert "delete.missing-ok" not in verdicts["delete"]["failed_clauses"]


def test_the_certificate_marks_both_clauses_and_validates(runs: Path, tmp_path: Path) -> None:
    for name, taxonomy in (("one", "failed"), ("both", "waived")):
        out = runs / name
        cert = certificate.build(records(out), out / "records.jsonl", summary(out), None)
        jsonschema.validate(cert, schema("certificate"))
        assert certificate.verify(cert, out / "records.jsonl", SPECS) == []
        verdicts = {v["spec"]: v for v in cert["verdicts"]}
        assert "delete-missing" in verdicts["delete"]["clauses"]["delete.missing-ok"]["waived"]
        assert "delete-missing" in verdicts["errors"]["clauses"]["errors.taxonomy"][taxonomy]
        covered = {(w["clause"], tuple(w["covered"])) for w in cert["waivers"] if w["case"] == "delete-missing"}
        expected = {("delete.missing-ok", ("delete.missing-ok",))}
        assert covered == (expected if name == "one" else expected | {("errors.taxonomy", ("errors.taxonomy",))})
        certificate.write(tmp_path / f"{name}.json", cert)  # the schema check on writing passes too


def test_diff_shows_each_clause_as_its_own_change(runs: Path) -> None:
    nodeids = [r["nodeid"] for r in _missing(runs / "raw")]
    broke = gspc("diff", "memory", "raw", cwd=runs)
    assert broke.returncode == 1, broke.stderr
    for nodeid in nodeids:
        assert f"{nodeid}  [delete.missing-ok]  passed -> failed" in broke.stdout
        assert f"{nodeid}  [errors.taxonomy]  passed -> failed" in broke.stdout
    waived = gspc("diff", "one", "both", cwd=runs)  # the same case outcome changes only by the invariant's waiver
    assert waived.returncode == 0, waived.stdout
    assert all(f"{nodeid}  [errors.taxonomy]  failed -> waived" in waived.stdout for nodeid in nodeids)
    assert "[delete.missing-ok]" not in waived.stdout  # waived in both runs: no change


def _allure(folder: Path, name: str) -> dict[str, Any]:
    found = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*-result.json")]
    return next(r for r in found if r["name"] == name)


@needs_allure
def test_allure_labels_links_and_details_name_both_clauses(runs: Path) -> None:
    name = f"delete-missing[{DRIVER}-path=flat]"
    one, both = _allure(runs / "allure-one", name), _allure(runs / "allure-both", name)
    labels = [(label["name"], label["value"]) for label in one["labels"]]
    assert ("feature", "delete.missing-ok") in labels and ("feature", "errors.taxonomy") in labels
    assert ("tag", "waived: delete.missing-ok") in labels and ("tag", "failed: errors.taxonomy") in labels
    assert [link["url"] for link in one["links"] if link["type"] == "issue"] == ["https://tracker.example/1"]
    assert one["status"] == "failed" and "also failed errors.taxonomy" in one["statusDetails"]["message"]
    assert "not waived: errors.taxonomy" in one["statusDetails"]["message"]
    assert re.search(r"MUST errors.taxonomy\*\* \(errors, ERR-3\) at step 1 delete", one["description"])
    (step,) = [s for s in one["steps"] if s["status"] == "failed"]
    assert "delete.missing-ok: expected success" in step["statusDetails"]["message"]
    assert "errors.taxonomy: expected a taxonomy error" in step["statusDetails"]["message"]
    assert both["status"] == "skipped"
    assert "delete.missing-ok (known issue" in both["statusDetails"]["message"]
    assert "errors.taxonomy (known issue" in both["statusDetails"]["message"]
    issues = {link["url"] for link in both["links"] if link["type"] == "issue"}
    assert issues == {"https://tracker.example/1", "https://tracker.example/2"}


def test_the_html_report_counts_lists_and_finds_the_record_by_both_clauses(runs: Path, open_report) -> None:  # noqa: F811
    report = open_report(runs / "one" / "index.html")
    page = report.page
    failing = [r for r in records(runs / "one") if "errors.taxonomy" in {c["clause"] for c in failed_clauses(r)}]
    row = page.locator('table.clauses tr[data-clause="errors.taxonomy"]')
    assert f"failed {len(failing)}/{len(failing)}" in row.inner_text()  # counted under the invariant's clause
    assert "waived" in page.locator('table.clauses tr[data-clause="delete.missing-ok"]').inner_text()
    row.locator("button").first.click()  # the invariant's cell filters to the records that failed it
    assert report.count() == len(failing)
    page.locator("table.cases tr.row").filter(has=page.get_by_text("delete-missing", exact=True)).filter(
        has_text="path=flat"
    ).click()
    detail = page.locator(".detail")
    judged = {r.get_attribute("data-judged"): r.inner_text() for r in detail.locator("tr[data-judged]").all()}
    assert set(judged) == {"delete.missing-ok", "errors.taxonomy"}
    assert "https://tracker.example/1" in judged["delete.missing-ok"] and "waived" in judged["delete.missing-ok"]
    assert "MUST" in judged["errors.taxonomy"] and "a taxonomy error" in judged["errors.taxonomy"]
    assert "KeyError" in judged["errors.taxonomy"] and "1 delete" in judged["errors.taxonomy"]
    page.click("text=reset")
    page.fill("input[type=search]", "errors.taxonomy")
    for _ in range(200):  # the search box waits out typing before it redraws
        page.wait_for_timeout(25)
        if report.count() == len(failing):
            break
    assert report.count() == len(failing)
    assert all("also" in row["clause"] and "errors.taxonomy" in row["clause"] for row in report.rows())
