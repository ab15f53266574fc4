"""Allure results: labels, parameters, steps and links per case; environment and categories per run.

Registered by the plugin only when allure-pytest writes results (``--alluredir``). allure-pytest
owns the result files; this module fills in what a case knows, from the case's own record.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from allure_commons.model2 import Label, Link, Parameter, Status, StatusDetails, TestStepResult
from allure_commons.types import LabelType, LinkType

SEVERITY = {"MUST": "critical", "SHOULD": "normal", "MAY": "minor", "IMPL": "trivial"}

#: Allure puts a result in the first category that matches: stale waivers before driver failures.
CATEGORIES = [
    {"name": "Stale waivers (unexpectedly passed)", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*unexpectedly-passed: .*"},
    {"name": "Driver failures (a clause is broken)", "matchedStatuses": ["failed"]},
    {"name": "Harness errors (not the driver)", "matchedStatuses": ["broken"]},
    {"name": "Waived (known issues)", "matchedStatuses": ["skipped"], "messageRegex": "(?s)XFAIL.*"},
    {"name": "Not applicable (capability not declared)", "matchedStatuses": ["skipped"],
     "messageRegex": "(?s).*not-applicable: .*"},
    {"name": "Not run (target unavailable)", "matchedStatuses": ["skipped"], "messageRegex": "(?s).*not-run: .*"},
]  # fmt: skip

#: ``go-storage <path>`` and ``go-storage#<n>`` in a clause's source, as links on GitHub.
GO_STORAGE = "https://github.com/beyondstorage/go-storage"
_SOURCE_PATH = re.compile(r"go-storage (docs/[\w./-]+\.md|[\w./-]+\.go)")
_SOURCE_ISSUE = re.compile(r"go-storage#(\d+)")


def source_link(clause_link: str | None, *sources: str) -> str | None:
    """The URL of a rule's source: the clause's own link, else the first go-storage file or issue named."""
    if clause_link:
        return clause_link
    for source in sources:
        if found := _SOURCE_PATH.search(source):
            return f"{GO_STORAGE}/blob/HEAD/{found.group(1)}"
        if found := _SOURCE_ISSUE.search(source):
            return f"{GO_STORAGE}/issues/{found.group(1)}"
    return None


class AllureCases:
    """pytest plugin: decorates each case's Allure result from its record; writes run-level files."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results = Path(config.option.allure_report_dir)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        try:
            return (yield)
        finally:
            record = getattr(item, "record", None)
            listener = self.config.pluginmanager.get_plugin("allure_listener")
            result = listener.allure_logger.get_test(None) if listener is not None else None
            if record is not None and result is not None:
                decorate(result, item, record)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from conformance.plugin import SUMMARY  # the plugin imports this module; import back lazily

        summary = session.config.stash.get(SUMMARY, None)
        if summary is not None:  # the controller only: workers have no summary
            write_run_files(self.results, summary)


def decorate(result: Any, item: Any, record: dict[str, Any]) -> None:
    """Labels, parameters, description, link and steps of one case's Allure result."""
    spec, clause, case = item.spec, item.clause, item.case
    epic = f"{spec.id} {spec.title}"
    result.labels += [
        Label(LabelType.EPIC, epic),
        Label(LabelType.FEATURE, clause.id),
        Label(LabelType.STORY, case.id),
        Label(LabelType.SEVERITY, SEVERITY[clause.level]),
        # suites group by target first: conformance belongs to the driver and backend pair
        Label(LabelType.PARENT_SUITE, record["target"]),
        Label(LabelType.SUITE, epic),
        Label(LabelType.SUB_SUITE, f"{clause.id} ({clause.level}, {clause.rule})"),
    ]
    # every param is a parameter: Allure derives historyId from them, so expansions stay distinct
    result.parameters += [Parameter(name="target", value=record["target"])]
    result.parameters += [Parameter(name=name, value=label) for name, label in record["params"].items()]
    result.description = (
        f"**{clause.level} {clause.id}** ({clause.rule}): {clause.text}\n\n"
        f"Case `{case.id}`: {case.title}\n\nSource: {clause.source}  \nSpec: `{spec.path.name}:{case.line}`"
    )
    if url := source_link(clause.link, clause.source, spec.source):
        result.links.append(Link(LinkType.LINK, url, f"{clause.rule}: {clause.source}"))
    result.steps += steps(record, result.start or 0)


def steps(record: dict[str, Any], start_ms: int) -> list[TestStepResult]:
    """One Allure step per traced spec step, timed from the trace, the failing one marked failed."""
    failure = record.get("failure")
    found = []
    clock = start_ms
    for number, trace in enumerate(record["steps"], start=1):
        took = round(trace.get("duration", 0) * 1000)
        step = TestStepResult(name=_title(number, trace), start=clock, stop=clock + took, status=Status.PASSED)
        step.parameters = [Parameter(name=k, value=_shown(v)) for k, v in trace.get("args", {}).items()]
        if "result" in trace:
            step.parameters.append(Parameter(name="result", value=_shown(trace["result"])))
        if "error" in trace:
            error = trace["error"]
            step.parameters.append(Parameter(name="error", value=f"{error['type']}: {error['message']}"))
        if failure and failure["step"] == number:
            step.status = Status.FAILED
            step.statusDetails = StatusDetails(message=f"expected {failure['expected']}\ngot {failure['actual']}")
        found.append(step)
        clock += took
    if failure and failure["step"] > len(record["steps"]):  # a timeout or a crash cut the step short
        details = StatusDetails(message=f"expected {failure['expected']}\ngot {failure['actual']}")
        found.append(
            TestStepResult(name=f"{failure['step']}. {failure['op']}", start=clock, stop=clock,
                           status=Status.FAILED, statusDetails=details)
        )  # fmt: skip
    return found


def _title(number: int, trace: dict[str, Any]) -> str:
    if "fault" in trace:
        fault = trace["fault"]
        return f"{number}. fault {fault.get('kind', '')}".rstrip()
    args = ", ".join(f"{k}={_shown(v, 40)}" for k, v in trace.get("args", {}).items())
    return f"{number}. {trace['op']}({args})"


def _shown(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_run_files(results: Path, summary: dict[str, Any]) -> None:
    """``environment.properties`` (harness, Python, packages, targets, specs) and ``categories.json``."""
    env = summary["environment"]
    props = {
        "gsp-conformance": summary["harness_version"],
        "run_id": summary["run_id"],
        "verdict": summary["verdict"],
        "python": env["python"],
        "platform": env["platform"],
        **{f"package.{name}": version for name, version in env["packages"].items()},
        **{f"target.{name}": driver for name, driver in summary["drivers"].items()},
        **{f"spec.{s['id']}": f"v{s['version']} sha256:{s['sha256'][:12]}" for s in summary["specs"].values()},
    }
    results.mkdir(parents=True, exist_ok=True)
    lines = [f"{_escape(key)}={_escape(value, key=False)}" for key, value in props.items()]
    (results / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (results / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")


def _escape(text: Any, key: bool = True) -> str:
    """Java properties escaping: backslashes, and ``=``/``:``/spaces in keys, non-ASCII as \\uXXXX."""
    out = str(text).replace("\\", "\\\\").replace("\n", "\\n")
    if key:
        out = out.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ")
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04x}" for c in out)
