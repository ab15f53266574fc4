"""Allure results: labels, parameters, steps and links per case; environment and categories per run.

Registered by the plugin only when allure-pytest writes results (``--alluredir``). allure-pytest
owns the result files; this module fills in what a case knows, from the case's own record, cleaned
by the run's redactor first (the record a case keeps in memory is the one before the writer's gate).
Every field is read defensively: odd record contents give odd text, never an exception.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from allure_commons.model2 import Label, Link, Parameter, Status, StatusDetails, TestStepResult
from allure_commons.types import LabelType, LinkType

from conformance.records import failed_clauses

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
        self.records: dict[str, dict[str, Any]] = {}

    def pytest_gspc_case_finished(self, item: pytest.Item, record: dict[str, Any]) -> None:
        self.records[item.nodeid] = record

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        try:
            return (yield)
        finally:
            record = self.records.pop(item.nodeid, None)
            listener = self.config.pluginmanager.get_plugin("allure_listener")
            result = listener.allure_logger.get_test(None) if listener is not None else None
            if record is not None and result is not None:
                decorate(result, record)

    def pytest_gspc_run_finished(self, config: pytest.Config, summary: dict[str, Any]) -> None:
        write_run_files(self.results, summary)


def decorate(result: Any, record: dict[str, Any]) -> None:
    """Labels, parameters, description, link and steps of one case's Allure result, from its (cleaned) record."""
    field = {k: _text(record.get(k)) for k in ("spec_id", "spec_title", "clause", "case", "level", "rule", "target",
                                               "clause_text", "title", "clause_source", "spec_source", "spec_file",
                                               "case_line")}  # fmt: skip
    epic = f"{field['spec_id']} {field['spec_title']}"
    result.labels += [
        Label(LabelType.EPIC, epic),
        Label(LabelType.FEATURE, field["clause"]),
        Label(LabelType.STORY, field["case"]),
        Label(LabelType.SEVERITY, SEVERITY.get(field["level"], "normal")),
        # suites group by target first: conformance belongs to the driver and backend pair
        Label(LabelType.PARENT_SUITE, field["target"]),
        Label(LabelType.SUITE, epic),
        Label(LabelType.SUB_SUITE, f"{field['clause']} ({field['level']}, {field['rule']})"),
    ]
    # every param is a parameter: Allure derives historyId from them, so expansions stay distinct
    params = record.get("params")
    result.parameters += [Parameter(name="target", value=field["target"])]
    result.parameters += [Parameter(name=_text(n), value=_text(v)) for n, v in _items(params)]
    result.description = (
        f"**{field['level']} {field['clause']}** ({field['rule']}): {field['clause_text']}\n\n"
        f"Case `{field['case']}`: {field['title']}\n\nSource: {field['clause_source']}  \n"
        f"Spec: `{field['spec_file']}:{field['case_line']}`"
    )
    link = record.get("clause_link")
    if url := source_link(link if isinstance(link, str) else None, field["clause_source"], field["spec_source"]):
        result.links.append(Link(LinkType.LINK, url, f"{field['rule']}: {field['clause_source']}"))
    failed = failed_clauses(record)
    if failed:  # every clause it failed: its own, and invariants beside it (maybe of another spec)
        result.description += "\n\nFailed clauses:\n" + "\n".join(_failed_line(entry) for entry in failed)
    for entry in failed:
        clause, waiver = _text(entry["clause"]), _mapping(entry.get("waiver"))
        if clause != field["clause"]:  # the result shows under each clause it failed
            result.labels.append(Label(LabelType.FEATURE, clause))
        result.labels.append(Label(LabelType.TAG, f"{'waived' if waiver else 'failed'}: {clause}"))
        if isinstance(waiver.get("link"), str):
            result.links.append(Link(LinkType.ISSUE, waiver["link"], f"{clause}: {_text(waiver.get('reason'))}"))
    result.steps += steps(record, result.start or 0)


def _failed_line(entry: dict[str, Any]) -> str:
    """One failed clause as a description line: level, clause, spec, rule, where, what, and its waiver."""
    waiver = _mapping(entry.get("waiver"))
    waived = f" (waived: {_text(waiver.get('reason'))}, {_text(waiver.get('link'))})" if waiver else ""
    return (f"- **{_text(entry.get('level'))} {_text(entry['clause'])}** ({_text(entry.get('spec'))}, "
            f"{_text(entry.get('rule'))}) at step {_text(entry.get('step'))} {_text(entry.get('op'))}: "
            f"expected {_text(entry.get('expected'))}, got {_text(entry.get('actual'))}{waived}")  # fmt: skip


def steps(record: dict[str, Any], start_ms: int) -> list[TestStepResult]:
    """One Allure step per traced spec step, timed from the trace, the failing one marked failed."""
    failure = _mapping(record.get("failure"))
    failed_at = failure.get("step") if type(failure.get("step")) is int else None
    breaches: dict[int, list[dict[str, Any]]] = {}  # step -> the clauses that failed there first
    for entry in failed_clauses(record):
        if type(entry.get("step")) is int:
            breaches.setdefault(entry["step"], []).append(entry)
    traced = record.get("steps")
    traces = [_mapping(t) for t in traced] if isinstance(traced, list) else []
    found = []
    clock = start_ms
    for number, trace in enumerate(traces, start=1):
        took = _millis(trace.get("duration"))
        step = TestStepResult(name=_title(number, trace), start=clock, stop=clock + took, status=Status.PASSED)
        step.parameters = [Parameter(name=_text(k), value=_shown(v)) for k, v in _items(trace.get("args"))]
        if "result" in trace:
            step.parameters.append(Parameter(name="result", value=_shown(trace["result"])))
        if "error" in trace:
            error = _mapping(trace["error"])
            step.parameters.append(Parameter(name="error", value=f"{_text(error.get('type'))}: "
                                                                  f"{_text(error.get('message'))}"))  # fmt: skip
        if failed_at == number or number in breaches:
            step.status = Status.FAILED
            step.statusDetails = StatusDetails(message=_breached(breaches.get(number), failure))
        found.append(step)
        clock += took
    if failed_at is not None and failed_at > len(traces):  # a timeout or a crash cut the step short
        found.append(
            TestStepResult(name=f"{failed_at}. {_text(failure.get('op'))}", start=clock, stop=clock,
                           status=Status.FAILED, statusDetails=StatusDetails(message=_expected(failure)))
        )  # fmt: skip
    return found


def _title(number: int, trace: dict[str, Any]) -> str:
    if "fault" in trace:
        fault = _mapping(trace["fault"])
        return f"{number}. fault {_text(fault.get('kind', ''))}".rstrip()
    args = ", ".join(f"{_text(k)}={_shown(v, 40)}" for k, v in _items(trace.get("args")))
    return f"{number}. {_text(trace.get('op'))}({args})"


def _breached(entries: list[dict[str, Any]] | None, failure: dict[str, Any]) -> str:
    """What a failing step should have done: per clause where several failed there."""
    if not entries or len(entries) == 1:
        return _expected(entries[0] if entries else failure)
    return "\n\n".join(f"{_text(e['clause'])}: {_expected(e)}" for e in entries)


def _expected(failure: dict[str, Any]) -> str:
    return f"expected {_text(failure.get('expected'))}\ngot {_text(failure.get('actual'))}"


def _shown(value: Any, limit: int = 500) -> str:
    text = _text(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text(value: Any) -> str:
    """A record value as text: strings as they are, anything else as JSON (cleaned records hold only JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[tuple[Any, Any]]:
    return list(value.items()) if isinstance(value, dict) else []


def _millis(seconds: Any) -> int:
    return round(seconds * 1000) if type(seconds) in (int, float) and abs(seconds) < 1e9 else 0


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
