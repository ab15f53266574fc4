"""A case that fails its own clause and an invariant at once, end to end through ``gspc run``: waived only
when both clauses are, and named by both in the records, HTML, certificate, diff and Allure results."""

from __future__ import annotations

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
from conformance.report import certificate
from conformance.spec.loader import schema

DRIVER = "report_drivers:DeleteMissingRaw"
OWN = "  - clause: delete.missing-ok\n    reason: deletes only what exists\n    link: https://tracker.example/1\n"
TAXONOMY = "  - clause: errors.taxonomy\n    reason: the SDK error leaks\n    link: https://tracker.example/2\n"
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
        "one": ("--driver", DRIVER, "--known-issues", "one.yaml", "--allure", "allure-one"),
        "both": ("--driver", DRIVER, "--known-issues", "both.yaml", "--allure", "allure-both"),
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
