"""Run the steps of one case against a tracked driver and judge each against its expectation."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.backends import FaultInjector
from conformance.driver import Mode, Object
from conformance.engine import invariants, payloads
from conformance.engine.expect import Mismatch, check, summary
from conformance.engine.frames import frames, locate
from conformance.engine.safe import attr, bounded, equal, rep, text, type_name
from conformance.engine.tracker import Tracker, confined
from conformance.redact import Redactor
from conformance.spec.model import REPEAT_PLACEHOLDERS, Case


class HarnessError(Exception):
    """The harness or its environment failed, not the driver (e.g. a fault step without a proxy)."""


@dataclass
class CaseRun:
    """What one case did: its step trace, the first mismatch, the IMPL behaviour labels, what it left."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, Any] | None = None  # the first failure, with ``clauses``: every clause failed, first breach each
    labels: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # paths its cleanup could not remove

    @property
    def passed(self) -> bool:
        return self.failure is None

    def fail(self, clause: str, step: int, op: str, expected: str, actual: str, own: bool = False) -> None:
        """Record that ``clause`` failed at a step (once per clause: its first breach is the evidence).

        The headline is the case's own failure (``own``) when there is one, else the first breach.
        """
        spec, known = invariants.clauses().get(clause, (None, None))
        entry = {"clause": clause, "spec": spec, "rule": known.rule if known else None,
                 "level": known.level if known else None, "step": step, "op": op,
                 "expected": expected, "actual": actual}  # fmt: skip
        if self.failure is None:
            self.failure = {"clauses": []}
        if own or "step" not in self.failure:
            self.failure.update(step=step, op=op, expected=expected, actual=actual)
        if all(c["clause"] != clause for c in self.failure["clauses"]):
            self.failure["clauses"].append(entry)


def needs_fault_proxy(case: Case) -> bool:
    """Whether a case injects network faults (and so needs a target with a fault proxy)."""
    return any(step.is_fault for step in case.steps)


def run_case(
    case: Case,
    params: Mapping[str, Any],
    tracker: Tracker,
    limits: Mapping[str, int],
    redactor: Redactor,
    run: CaseRun,
    cap: int = payloads.MAX_PAYLOAD,
    faults: FaultInjector | None = None,
    list_page_size: int | None = None,
) -> CaseRun:
    """Run the steps in order into ``run`` (the caller keeps it if a timeout cuts in); stop at a mismatch.

    ``cap`` is the most bytes one data expression may build; ``faults`` is the target's injector, if any;
    ``list_page_size`` is the target's listing page, which sets how many times a ``repeat: {pages: N}`` step runs.
    """
    try:
        _run_steps(case, params, tracker, limits, redactor, run, {}, cap, faults, list_page_size)
    finally:
        faulted = any("fault" in step for step in run.steps)
        if faulted and faults is not None:  # a case that stops early never reaches its clear step
            faults.clear()
    locate(run)
    return run


def _run_steps(case, params, tracker, limits, redactor, run, saved, cap, faults, page_size) -> None:
    judged = judged_clause(case)
    declared = None
    for index, planned in enumerate(case.steps, start=1):
        step = planned.filled(params)
        copies = step.copies(page_size)
        if step.is_fault:
            _inject(faults, step.args)
            run.steps.append({"fault": step.args})
            continue
        op, expect = step.op, step.expect
        if "undeclared" in expect:  # a negative contract: declaring the capability is itself the failure
            declared = tracker.driver.capabilities() if declared is None else declared
            claimed = [token for token in expect["undeclared"] if declared.has(token)]
            if claimed:
                shown = ", ".join(claimed)
                run.fail(judged, index, op, f"a declaration without {shown}", f"declares {shown}", own=True)
                return
        for copy in range(copies):
            spec_args = dict(step.args)
            if step.repeats:  # the copies address distinct paths: path-0, path-1, ...
                spec_args["path"] = f"{spec_args['path']}-{copy}"
            if not _step(index, op, step, spec_args, tracker, limits, redactor, run, saved, cap, judged, copy):
                return
        if step.repeats:  # the steps after it may name how many copies it made
            params = {**params, **dict(zip(REPEAT_PLACEHOLDERS, (copies, copies - 1), strict=True))}


def _step(index, op, step, spec_args, tracker, limits, redactor, run, saved, cap, judged, copy) -> bool:
    """Run one call of a step and judge it; False when the case must stop."""
    prefix = tracker.prefix
    path, args = _arguments(op, spec_args, prefix, saved, limits, cap)
    obj = args.get("obj")
    if isinstance(obj, Object) and confined(obj.path, prefix):  # a driver's Object naming a path it was not given
        actual = f"the Object saved from the driver is at {obj.path!r}, not under the case's prefix"
        run.fail(invariants.RENAME, index, op, "an Object at the path the case asked for", actual)
        run.fail(judged, index, op, "the step to run on the object the case created", actual, own=True)
        return False
    trace: dict[str, Any] = {"op": op, "args": _shown(args, prefix, redactor)}
    start = time.perf_counter()
    outcome = tracker.call(op, path, args)
    duration = round(time.perf_counter() - start, 6)
    error = outcome[1]
    if copy:  # a repeated step keeps one trace: the first call's, with the count and the total time
        trace = run.steps[-1]
        trace["repeat"], trace["duration"] = copy + 1, round(trace["duration"] + duration, 6)
    else:
        trace["duration"] = duration
        if error is None:
            trace["result"] = summary(outcome[0], prefix)
        else:  # any BaseException a driver raised: its text and attributes are the driver's, so read them safely
            trace["error"] = {
                "type": type_name(error),
                "message": bounded(redactor.scrub(text(error))),
                "retryable": attr(error, "retryable", False) is True,
                **frames(error, redactor),  # outside the taxonomy: where the driver raised it
            }
        run.steps.append(trace)
    breaches = invariants.check(op, path, args, outcome, redactor)
    for breach in breaches:
        run.fail(breach.clause, index, op, bounded(breach.expected), bounded(redactor.scrub(breach.actual)))
    unusable = next((b for b in breaches if b.unusable), None)
    if unusable is not None and (step.expect or step.save is not None):  # the case would read this result
        run.fail(judged, index, op, bounded(unusable.expected), bounded(redactor.scrub(unusable.actual)), own=True)
        return False
    try:
        label = check(step.expect, op, path, outcome, prefix, limits, cap)
    except Mismatch as miss:
        run.fail(
            judged, index, op, bounded(redactor.scrub(miss.expected)), bounded(redactor.scrub(miss.actual)), own=True
        )
        return False
    moved = _object_fields(step.expect.get("object", {}), args.get("obj"), limits)
    if moved:  # the Object the step handed over, as the driver left it (write_append reports its offset there)
        run.fail(judged, index, op, *moved, own=True)
        return False
    if label and not copy:
        run.labels.append(label)
    if step.save is not None:
        saved[step.save] = outcome[0]
    return True


def _object_fields(want: Mapping[str, Any], obj: Any, limits: Mapping[str, int]) -> tuple[str, str] | None:
    """(expected, actual) for the first field of the step's Object that differs from ``want``, or None."""
    for name, value in want.items():
        got, expected = attr(obj, name), payloads.parse_size(value, limits)
        if not equal(got, expected):
            return f"the object's {name} {expected}", f"{name} {rep(got)}"
    return None


def judged_clause(case: Case) -> str:
    """The clause a mismatch fails: the case's own, or for an IMPL case the rule its alternatives sit under.

    Only IMPL cases name an ``otherwise`` clause (lint refuses it elsewhere), so no clause table is needed here.
    """
    named = [s.expect["otherwise"] for s in case.steps if "otherwise" in s.expect]
    return named[0] if named else case.clause


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
