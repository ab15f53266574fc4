"""The Hypothesis state machine: rules are the driver's operations, run through a Tracker, judged by the model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from conformance.driver import Capabilities, Mode, Object
from conformance.engine import invariants
from conformance.engine.expect import Mismatch, check, summary
from conformance.engine.interrupts import CaseTimeout, deadline
from conformance.engine.safe import attr, bounded, text, type_name
from conformance.engine.tracker import Ledger, Tracker
from conformance.explore.model import ABSENT, ANYTHING, LARGE, POOL, PREFIXES, Check, Handle, Model, Payload
from conformance.explore.results import SHRINK_SECONDS
from conformance.redact import Redactor

#: Small payloads of several sizes, one draw in about a hundred large; shrinking moves towards one byte.
SIZES = (1, 3, 0, 10, 100, 4096) * 16 + (LARGE,)
PAYLOADS = st.builds(Payload, size=st.sampled_from(SIZES), seed=st.integers(1, 4))
#: Every pool path, the first two more often: state bugs need steps that meet on one path.
PATHS = st.sampled_from((POOL[0], POOL[1], POOL[0], POOL[1], POOL[0], *POOL))
SPANS = st.sampled_from(("whole", "offset", "size", "offset+size"))
POSITIONS = st.integers(0, 1 << 24)
SESSIONS_ENDED = 3
SESSIONS = st.integers(0, SESSIONS_ENDED)
#: The invariants every step is held to (a step that breaks none has met them all).
INVARIANT_CLAUSES = frozenset({invariants.TAXONOMY, invariants.ENVELOPE, invariants.RESULTS})
#: The rules and the capability each needs: a machine has only the rules its target declares. Hypothesis
#: draws earlier names (in sorted order) more often, so the append rules, which need runs of steps, come first.
NEEDS = {
    "append_bytes": "write_append",
    "append_commit": "commit_append",
    "append_create": "create_append",
    "append_more": "write_append",
    "append_refused": "create_append",
    "delete": "delete",
    "list": "list",
    "read": "read",
    "stat": "stat",
    "write": "write",
}


class Unreplayable(Exception):
    """A replayed sequence uses a session whose create_append was left out."""


class BudgetSpent(BaseException):
    """The time budget (or the shrinking time) ended before this example: a BaseException, so Hypothesis stops."""


@dataclass
class Step:
    """One step as a spec case states it (arguments, expectation, saved name) and as a record traces it."""

    op: str
    args: dict[str, Any]
    checks: list[Check]
    save: str | None = None
    trace: dict[str, Any] = field(default_factory=dict)

    @property
    def expect(self) -> dict[str, Any]:
        """Every check of the step as one expectation; the invariant alone when the model knows nothing."""
        if not self.checks:
            return ANYTHING
        return merged(c.expect for c in self.checks)


def merged(expects: Any) -> dict[str, Any]:
    """Expectations joined into one (``fields`` and ``mode`` merge key by key)."""
    joined: dict[str, Any] = {}
    for expect in expects:
        for key, value in expect.items():
            joined[key] = {**joined[key], **value} if key in ("fields", "mode") and key in joined else value
    return joined


class Contradiction(Exception):
    """The driver contradicted the model: the clause, the step, what was expected and what happened."""

    def __init__(self, clause: str, steps: list[Step], expect: dict[str, Any], miss: Mismatch,
                 calls: list[tuple[str, dict[str, Any]]] | None = None) -> None:  # fmt: skip
        super().__init__(f"{clause}: step {len(steps)} {steps[-1].op}: expected {miss.expected}, got {miss.actual}")
        self.clause = clause
        self.steps = list(steps)
        self.calls = list(calls or [])
        self.expect = expect
        self.expected = miss.expected
        self.actual = miss.actual


@dataclass
class Context:
    """What every example of one exploration shares: the driver, its journal, the budget and the counters."""

    driver: Any
    target: str
    caps: Capabilities
    ledger: Ledger
    redactor: Redactor
    root: str
    timeout: float
    ends: float | None = None  # perf_counter time at which no new example starts
    examples: int = 0
    steps: int = 0
    checked: set[str] = field(default_factory=set)
    leftovers: list[str] = field(default_factory=list)
    best: Contradiction | None = None  # the shortest failure so far: shrinking works from it
    shrink_seconds: float = SHRINK_SECONDS
    shrink_until: float | None = None
    timed_out: bool = False
    machine: ExploreMachine | None = None

    def has(self, token: str) -> bool:
        return self.caps.has(token)


class ExploreMachine(RuleBasedStateMachine):
    """One example: a fresh scratch prefix, a fresh model, operations drawn from what the target declares."""

    ctx: Context

    def __init__(self) -> None:
        super().__init__()
        ctx = self.ctx
        now = time.perf_counter()
        if ctx.best is None and ctx.ends is not None and now > ctx.ends:
            raise BudgetSpent
        if ctx.shrink_until is not None and now > ctx.shrink_until:
            raise BudgetSpent  # Hypothesis's shrinking has had its time: minimize() finishes from the best so far
        ctx.examples += 1
        self.prefix = f"{ctx.root}/explore/{ctx.examples}/"
        self.tracker = Tracker(ctx.driver, ctx.target, self.prefix, ctx.ledger)
        self.model = Model()
        self.steps: list[Step] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.named: dict[str, Handle] = {}  # sessions by the name their create_append step gave them
        ctx.machine = self

    @rule(path=PATHS, payload=PAYLOADS)
    def write(self, path: str, payload: Payload) -> None:
        self.do("write", path=path, payload=payload)

    @rule(path=PATHS, span=SPANS, a=POSITIONS, b=POSITIONS)
    def read(self, path: str, span: str, a: int, b: int) -> None:
        self.do("read", path=path, span=span, a=a, b=b)

    @rule(path=PATHS)
    def stat(self, path: str) -> None:
        self.do("stat", path=path)

    @rule(path=PATHS)
    def delete(self, path: str) -> None:
        self.do("delete", path=path)

    @rule(prefix=st.sampled_from(PREFIXES))
    def list(self, prefix: str) -> None:
        self.do("list", prefix=prefix)

    @rule(path=PATHS)
    def append_create(self, path: str) -> None:
        self.do("create_append", path=path, key=f"h{len(self.model.handles) + 1}")

    @rule(back=SESSIONS, payload=PAYLOADS)
    def append_bytes(self, back: int, payload: Payload) -> None:
        key = self._session(back)
        if key is not None:
            self.do("write_append", key=key, payload=payload)

    @rule(back=SESSIONS, payload=PAYLOADS)
    def append_more(self, back: int, payload: Payload) -> None:
        """A second rule for write_append, so it is drawn twice as often: bugs that need several appends."""
        self.append_bytes(back, payload)

    @rule(back=SESSIONS)
    def append_commit(self, back: int) -> None:
        key = self._session(back)
        if key is not None:
            self.do("commit_append", key=key)

    @rule(path=PATHS, op=st.sampled_from(("write_append", "commit_append")), payload=PAYLOADS)
    def append_refused(self, path: str, op: str, payload: Payload) -> None:
        """An object without the append bit (one rule for both operations, so it is drawn no more than others)."""
        if self.ctx.has(op):
            self.do("append_refused", path=path, op=op, payload=payload)

    def do(self, name: str, **args: Any) -> None:
        """Run one operation with its arguments resolved, remembered so that the sequence can be replayed."""
        self.calls.append((name, args))
        getattr(self, f"_{name}")(**args)

    def _write(self, path: str, payload: Payload) -> None:
        payload = self._fit(payload, "write_size_maximum")
        checks = self.model.write(path, payload)
        self._call("write", {"path": path, "data": payload}, checks)

    def _read(self, path: str, span: str, a: int, b: int) -> None:
        pairs = self._span(path, span, a, b)
        self._call("read", {"path": path, **pairs}, self.model.read(path, pairs))

    def _stat(self, path: str) -> None:
        self._call("stat", {"path": path}, self.model.stat(path))

    def _delete(self, path: str) -> None:
        self._call("delete", {"path": path}, self.model.delete(path))

    def _list(self, prefix: str) -> None:
        self._call("list", {"prefix": prefix}, self.model.list(prefix))

    def _create_append(self, path: str, key: str) -> None:
        handle, checks = self.model.create_append(path)
        self.named[key] = handle
        handle.obj = self._call("create_append", {"path": path}, checks, save=handle.name)

    def _write_append(self, key: str, payload: Payload) -> None:
        handle = self._named(key)
        payload = self._fit(payload, "append_size_maximum", "append_total_size_maximum", handle)
        checks = self.model.write_append(handle, payload)
        self._call("write_append", {"obj": handle, "data": payload}, checks)

    def _commit_append(self, key: str) -> None:
        handle = self._named(key)
        self._call("commit_append", {"obj": handle}, self.model.commit_append(handle))

    def _append_refused(self, path: str, op: str, payload: Payload) -> None:
        args: dict[str, Any] = {"obj": path}
        if op == "write_append":
            args["data"] = self._fit(payload, "append_size_maximum")
        self._call(op, args, self.model.refused_append())

    def teardown(self) -> None:
        if self.ctx.timed_out:  # a hung driver would hang its cleanup too: the journal keeps the paths
            self.ctx.leftovers += list(self.tracker.created)
            return
        with deadline(self.ctx.timeout, "cleanup did not finish"):
            self.ctx.leftovers += self.tracker.cleanup()

    def _session(self, back: int) -> str | None:
        """A session by number: mostly an open one (0 the newest: shrinking moves there), 3 an ended one."""
        live = [k for k in reversed(self.named) if self.named[k].open]
        ended = [k for k in reversed(self.named) if not self.named[k].open]
        keys = (ended or live) if back == SESSIONS_ENDED else (live or ended)
        return keys[back % len(keys)] if keys else None

    def _named(self, key: str) -> Handle:
        if key not in self.named:  # a replay without the create_append this step used
            raise Unreplayable(key)
        return self.named[key]

    def _fit(self, payload: Payload, limit: str, total: str | None = None, handle: Handle | None = None) -> Payload:
        """The payload cut to the driver's declared limits: going over one is another clause, not this machine's."""
        size = min(payload.size, self.ctx.caps.limits.get(limit, payload.size))
        if total and handle is not None and total in self.ctx.caps.limits:
            size = min(size, max(self.ctx.caps.limits[total] - sum(c.size for c in handle.chunks), 0))
        return payload if size == payload.size else Payload(size, payload.seed)

    def _span(self, path: str, span: str, a: int, b: int) -> dict[str, int]:
        """offset and size pairs inside the object (reading past the end is implementation-defined)."""
        wanted = [p for p in ("offset", "size") if p in span and self.ctx.has(f"read.{p}")]
        size = self.model.size(path)
        if not wanted or self.model.paths[path] is ABSENT:
            return {}
        length = 8 if size is None else size
        if length == 0:
            return {"size": 0} if "size" in wanted else {}
        offset = a % length if "offset" in wanted else 0
        pairs = {"offset": offset} if "offset" in wanted else {}
        if "size" in wanted:
            pairs["size"] = b % (length - offset + 1)
        return pairs

    def _call(self, op: str, args: dict[str, Any], checks: list[Check], save: str | None = None) -> Any:
        """Run one step on the driver, record it, and raise Contradiction at the first check it misses."""
        step = Step(op, _spec_args(args), checks, save)
        self.steps.append(step)
        self.ctx.steps += 1
        driver_args = self._driver_args(args)
        path = driver_args.get("path", driver_args.get("prefix"))
        if "obj" in driver_args:
            path = attr(driver_args["obj"], "path")
        start = time.perf_counter()
        try:
            with deadline(self.ctx.timeout, f"the step did not finish within {self.ctx.timeout:g} s"):
                outcome = self.tracker.call(op, path, driver_args)
        except CaseTimeout as exc:
            step.trace = {"op": op, "args": step.args, "duration": round(time.perf_counter() - start, 6),
                          "error": {"type": "CaseTimeout", "message": str(exc), "retryable": False}}  # fmt: skip
            self.ctx.timed_out = True
            raise
        step.trace = _trace(step, outcome, time.perf_counter() - start, self.prefix)
        breaches = invariants.check(op, path, driver_args, outcome, self.ctx.redactor)
        if breaches:  # the engine's rules for every call; the case states the step's own expectation
            self._fail(breaches[0].clause, step.expect, Mismatch(breaches[0].expected, breaches[0].actual))
        self.ctx.checked |= INVARIANT_CLAUSES
        for each in checks:
            miss = _miss(each, op, path, outcome, self.prefix, self.ctx.caps.limits)
            if miss is not None:
                self._fail(each.clause, each.expect, miss)
            self.ctx.checked.add(each.clause)
        return outcome[0]

    def _fail(self, clause: str, expect: dict[str, Any], miss: Mismatch) -> None:
        """Raised outside any handler: one failure origin, so Hypothesis shrinks every contradiction as one."""
        found = Contradiction(clause, self.steps, expect, miss, self.calls)
        ctx = self.ctx
        if ctx.best is None:
            ctx.shrink_until = time.perf_counter() + ctx.shrink_seconds
        if ctx.best is None or len(found.steps) < len(ctx.best.steps):
            ctx.best = found
        raise found

    def _driver_args(self, args: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in args.items():
            if key in ("path", "prefix"):
                found[key] = self.prefix + value
            elif key == "obj":
                found[key] = (
                    value.obj if isinstance(value, Handle) else Object(path=self.prefix + value, mode=Mode.READ)
                )
            elif isinstance(value, Payload):
                found[key] = value.data
            else:
                found[key] = value
        return found


def _miss(each: Check, op: str, path: Any, outcome: Any, prefix: str, limits: Any) -> Mismatch | None:
    try:
        check(each.expect, op, path, outcome, prefix, limits)
    except Mismatch as miss:
        return miss
    return None


def _spec_args(args: dict[str, Any]) -> dict[str, Any]:
    """Arguments in the spec language: payloads as data expressions, sessions as ``$name``."""
    found: dict[str, Any] = {}
    for key, value in args.items():
        if isinstance(value, Payload):
            found[key] = value.expr()
        elif key == "obj":
            found[key] = f"${value.name}" if isinstance(value, Handle) else {"path": value, "mode": ["read"]}
        else:
            found[key] = value
    return found


def _trace(step: Step, outcome: tuple[Any, BaseException | None], seconds: float, prefix: str) -> dict[str, Any]:
    trace: dict[str, Any] = {"op": step.op, "args": step.args, "duration": round(seconds, 6)}
    result, error = outcome
    if error is None:
        trace["result"] = summary(result, prefix)
    else:  # the driver's text and attributes, read safely (the record writer scrubs them)
        trace["error"] = {"type": type_name(error), "message": bounded(text(error)),
                          "retryable": attr(error, "retryable", False) is True}  # fmt: skip
    return trace


def replay(machine: type[ExploreMachine], calls: list[tuple[str, dict[str, Any]]]) -> Contradiction | None:
    """Run a sequence of resolved calls as a fresh example; the contradiction it raises, if any."""
    example = machine()
    try:
        for name, args in calls:
            example.do(name, **args)
    except Contradiction as found:
        return found
    except Unreplayable:
        return None
    finally:
        example.teardown()
    return None


def minimize(machine: type[ExploreMachine], failure: Contradiction) -> Contradiction:
    """Leave out steps one at a time while the same clause still fails: the steps Hypothesis could not delete
    (a removal that shifts which session a later step picks) go too."""
    machine.ctx.shrink_until = None  # Hypothesis is done: the replays below must not stop at its deadline
    best, index = failure, 0
    while index < len(best.calls):
        name, args = best.calls[index]
        dropped = args.get("key") if name == "create_append" else None  # its session's steps go with it
        trial = [c for i, c in enumerate(best.calls) if i != index and (dropped is None or c[1].get("key") != dropped)]
        found = replay(machine, trial)
        if found is not None and found.clause == best.clause:
            best = found
        else:
            index += 1
    return best


def machine_for(ctx: Context) -> type[ExploreMachine]:
    """A machine class bound to one exploration's context, without the rules its target does not declare.

    Rules are left out rather than guarded by preconditions: a rule that can always run keeps the
    choice sequence aligned, so Hypothesis can delete steps while shrinking.
    """
    hidden = {name: None for name, needs in NEEDS.items() if not ctx.has(needs)}
    return type("Explore", (ExploreMachine,), {"ctx": ctx, **hidden})
