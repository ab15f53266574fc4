"""Run the steps of one case against a tracked driver and judge each against its expectation."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.backends import FaultInjector
from conformance.driver import Mode, Object
from conformance.engine import payloads
from conformance.engine.expect import Mismatch, check, summary
from conformance.engine.frames import frames, locate
from conformance.engine.safe import attr, bounded, text, type_name
from conformance.engine.tracker import Tracker
from conformance.redact import Redactor
from conformance.spec.model import Case

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class HarnessError(Exception):
    """The harness or its environment failed, not the driver (e.g. a fault step without a proxy)."""


@dataclass
class CaseRun:
    """What one case did: its step trace, the first mismatch, the IMPL behaviour labels, what it left."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # paths its cleanup could not remove

    @property
    def passed(self) -> bool:
        return self.failure is None


def needs_fault_proxy(case: Case) -> bool:
    """Whether a case injects network faults (and so needs a target with a fault proxy)."""
    return any("fault" in step for step in case.steps)


def run_case(
    case: Case,
    params: Mapping[str, Any],
    tracker: Tracker,
    limits: Mapping[str, int],
    redactor: Redactor,
    run: CaseRun,
    cap: int = payloads.MAX_PAYLOAD,
    faults: FaultInjector | None = None,
) -> CaseRun:
    """Run the steps in order into ``run`` (the caller keeps it if a timeout cuts in); stop at a mismatch.

    ``cap`` is the most bytes one data expression may build; ``faults`` is the target's injector, if any.
    """
    try:
        _run_steps(case, params, tracker, limits, redactor, run, {}, cap, faults)
    finally:
        faulted = any("fault" in step for step in run.steps)
        if faulted and faults is not None:  # a case that stops early never reaches its clear step
            faults.clear()
    locate(run)
    return run


def _run_steps(case, params, tracker, limits, redactor, run, saved, cap, faults) -> None:
    for index, raw in enumerate(case.steps, start=1):
        step = substitute(raw, params)
        if "fault" in step:
            _inject(faults, step["fault"])
            run.steps.append({"fault": step["fault"]})
            continue
        op = next(k for k in step if k not in ("expect", "save", "note"))
        path, args = _arguments(op, step[op] or {}, tracker.prefix, saved, limits, cap)
        trace: dict[str, Any] = {"op": op, "args": _shown(args, tracker.prefix, redactor)}
        start = time.perf_counter()
        outcome = tracker.call(op, path, args)
        trace["duration"] = round(time.perf_counter() - start, 6)
        error = outcome[1]
        if error is None:
            trace["result"] = summary(outcome[0], tracker.prefix)
        else:  # any BaseException a driver raised: its text and attributes are the driver's, so read them safely
            trace["error"] = {
                "type": type_name(error),
                "message": bounded(redactor.scrub(text(error))),
                "retryable": attr(error, "retryable", False) is True,
                **frames(error, redactor),  # outside the taxonomy: where the driver raised it
            }
        run.steps.append(trace)
        try:
            label = check(step.get("expect", {}), op, path, outcome, tracker.prefix, limits, cap)
        except Mismatch as miss:
            run.failure = {
                "step": index,
                "op": op,
                "expected": bounded(redactor.scrub(miss.expected)),
                "actual": bounded(redactor.scrub(miss.actual)),
            }
            return
        if label:
            run.labels.append(label)
        if "save" in step:
            saved[step["save"]] = outcome[0]


def substitute(value: Any, params: Mapping[str, Any]) -> Any:
    """Fill ``{name}`` placeholders with params; a whole-string placeholder keeps the value's type."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in params:
            return params[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: substitute(v, params) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, params) for v in value]
    return value


def _arguments(op, spec_args, prefix, saved, limits, cap) -> tuple[str | None, dict[str, Any]]:
    """Driver keyword arguments for a step, and the path it addresses (for the guard and envelope)."""
    args: dict[str, Any] = {}
    path = None
    for key, value in spec_args.items():
        if key in ("path", "prefix"):
            path = args[key] = prefix + str(value)
        elif key == "obj":
            args["obj"] = _object(value, prefix, saved)
            path = args["obj"].path if isinstance(args["obj"], Object) else None
        elif key == "data" or payloads.is_data(value):
            args[key] = payloads.evaluate(value, limits, cap)
        else:
            args[key] = value
    if op in ("write", "write_append") and "data" not in args:
        args["data"] = b""
    return path, args


def _object(value: Any, prefix: str, saved: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return saved.get(value[1:])
    mode = Mode(0)
    for name in value["mode"]:
        mode |= Mode[name.upper()]
    return Object(path=prefix + value["path"], mode=mode)


def _shown(args: Mapping[str, Any], prefix: str, redactor: Redactor) -> dict[str, Any]:
    """Arguments as a record shows them: paths relative, payloads summarised, secrets masked."""
    shown = {}
    for key, value in redactor.pairs(args).items():
        if isinstance(value, bytes | bytearray | Object):
            value = summary(value, prefix)
        elif key in ("path", "prefix") and isinstance(value, str):
            value = value[len(prefix) :]
        shown[key] = value
    return shown


def _inject(faults: FaultInjector | None, fault: Mapping[str, Any]) -> None:
    if faults is None:
        raise HarnessError("fault step on a target without a fault proxy")
    options = {k: v for k, v in fault.items() if k != "kind"}
    if fault["kind"] == "clear":
        faults.clear()
    else:
        faults.inject(fault["kind"], **options)
