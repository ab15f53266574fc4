"""Allure results of ``gspc run --allure``: labels, severity, parameters, steps, links, categories, environment."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import gspc, records

pytest.importorskip("allure_pytest")

DRIVER = "report_drivers:FailsAndBreaks"
KNOWN = f"""target: {DRIVER}
waivers:
  - case: delete-missing-parent
    reason: parents are looked up first
    link: https://tracker.example/7
  - case: delete-keeps-siblings
    reason: thought to fail
    link: https://tracker.example/8
"""


def _results(folder: Path) -> dict[str, dict[str, Any]]:
    """The Allure results of a folder by test name."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*-result.json")]
    return {r["name"]: r for r in found}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """One delete run of a driver that fails clauses, breaks the harness on faults, and has two waivers."""
    work = tmp_path_factory.mktemp("allure")
    (work / "known.yaml").write_text(KNOWN, encoding="utf-8")
    done = gspc("run", "--driver", DRIVER, "--spec", "delete", "--known-issues", "known.yaml",
                "--allure", "allure", "--out", "out", cwd=work)  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    return work, _results(work / "allure")


def _labels(result: dict[str, Any]) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for label in result["labels"]:
        labels.setdefault(label["name"], []).append(label["value"])
    return labels


def test_one_result_per_case_with_distinct_history(run) -> None:
    work, results = run
    assert set(results) == {r["nodeid"].split("::", 1)[1] for r in records(work / "out")}
    assert len({r["historyId"] for r in results.values()}) == len(results)  # params are not taken for retries


def test_labels_name_spec_clause_case_and_severity(run) -> None:
    _, results = run
    must = _labels(results[f"delete-missing[{DRIVER}-path=flat]"])
    assert must["epic"] == ["GSP-46 Idempotent delete"]
    # the invariant the case failed beside its own clause is a feature too: the result shows under both
    assert must["feature"] == ["delete.missing-ok", "errors.envelope"] and must["story"] == ["delete-missing"]
    assert must["severity"] == ["critical"] and must["parentSuite"] == [DRIVER]
    assert _labels(results[f"delete-missing-parent[{DRIVER}]"])["severity"] == ["normal"]


def test_target_and_params_are_parameters(run) -> None:
    _, results = run
    params = {p["name"]: p["value"] for p in results[f"delete-existing[{DRIVER}-size=4KiB-path=unicode]"]["parameters"]}
    assert params == {"target": DRIVER, "size": "4KiB", "path": "unicode"}


def test_each_spec_step_is_a_step_with_args_and_result(run) -> None:
    _, results = run
    result = results[f"delete-three-times[{DRIVER}]"]
    steps = result["steps"]
    assert [s["name"].split("(")[0] for s in steps] == ["1. write", "2. delete", "3. delete"]
    assert [s["status"] for s in steps] == ["passed", "passed", "failed"]
    first = {p["name"]: p["value"] for p in steps[0]["parameters"]}
    assert first["path"] == "thrice" and json.loads(first["result"])["size"] == 7
    assert "expected success" in steps[2]["statusDetails"]["message"]
    assert any(p["name"] == "error" and p["value"].startswith("ObjectNotExist") for p in steps[2]["parameters"])


def test_link_to_the_rules_source(run) -> None:
    _, results = run
    (link,) = results[f"delete-missing[{DRIVER}-path=flat]"]["links"]
    assert link["url"] == "https://github.com/beyondstorage/go-storage/blob/HEAD/docs/rfcs/46-idempotent-delete.md"
    assert link["name"].startswith("DEL-2")


def test_driver_failures_are_failed_and_harness_errors_broken(run) -> None:
    _, results = run
    assert results[f"delete-missing[{DRIVER}-path=flat]"]["status"] == "failed"
    assert results[f"delete-403-surfaces[{DRIVER}]"]["status"] == "broken"
    assert results[f"delete-missing-parent[{DRIVER}]"]["status"] == "skipped"  # waived


def test_categories_sort_every_result_as_allure_would(run) -> None:
    work, results = run
    categories = json.loads((work / "allure" / "categories.json").read_text(encoding="utf-8"))

    def category(result: dict[str, Any]) -> str | None:  # Allure: the first category that matches
        message = (result.get("statusDetails") or {}).get("message", "")
        for c in categories:
            if result["status"] in c["matchedStatuses"] and re.fullmatch(c.get("messageRegex", "(?s).*"), message):
                return c["name"]
        return None

    assert category(results[f"delete-missing[{DRIVER}-path=flat]"]).startswith("Driver failures")
    assert category(results[f"delete-500-surfaces[{DRIVER}]"]).startswith("Harness errors")
    assert category(results[f"delete-missing-parent[{DRIVER}]"]).startswith("Waived")
    assert category(results[f"delete-keeps-siblings[{DRIVER}]"]).startswith("Stale waivers")
    assert category(results[f"delete-twice[{DRIVER}]"]) == category(results[f"delete-three-times[{DRIVER}]"])


def test_environment_properties_name_harness_targets_and_specs(run) -> None:
    work, _ = run
    lines = (work / "allure" / "environment.properties").read_text(encoding="utf-8").splitlines()
    props = dict(line.split("=", 1) for line in lines)
    assert props["verdict"] == "non-conformant" and props["gsp-conformance"]
    assert props["target.report_drivers\\:FailsAndBreaks"] == DRIVER
    assert props["spec.GSP-46"].startswith("v3 sha256:") and "package.pytest" in props


def test_xdist_workers_write_every_result_once(tmp_path: Path) -> None:
    done = gspc("run", "--driver", DRIVER, "--spec", "delete", "-n", "2", "--allure", "allure", "--out", "out",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    results = list((tmp_path / "allure").glob("*-result.json"))
    assert len(results) == len(records(tmp_path / "out"))
    assert (tmp_path / "allure" / "categories.json").is_file()
