"""``gspc explore``: open a target, run the state machine within a budget, write records, a found case, reports."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import get_state_machine_test

from conformance import outputs
from conformance.engine.expect import Mismatch
from conformance.engine.interrupts import CaseTimeout, watch_user_interrupts
from conformance.engine.tracker import Ledger
from conformance.explore.cases import safe_name, write_case
from conformance.explore.machine import BudgetSpent, Context, Contradiction, machine_for, minimize
from conformance.explore.results import SHRINK_SECONDS, SPEC, TITLE, Budget, case_id, record
from conformance.records import RecordWriter, new_run_id
from conformance.redact import Redactor
from conformance.report.summary import finalize
from conformance.report.terminal import printable
from conformance.targets import OpenTarget, Target, TargetUnavailable, load_driver_class, open_target

FALLBACK = "storager.roundtrip"  # the clause a record names when no step was judged at all
CODES = {"passed": 0, "not-applicable": 0, "failed": 1, "not-run": 3, "error": 3, "interrupted": 3}


class ExploreUsage(Exception):
    """Bad input to explore (a budget or an option): one line, exit 2."""


@dataclass
class Exploration:
    """What one exploration did: its budget, counters, outcome, and the failure and case file if any."""

    target: str
    run_id: str
    budget: Budget
    outcome: str = "passed"
    reason: str | None = None
    sequences: int = 0
    steps: int = 0
    seconds: float = 0.0
    clauses: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    failure: Contradiction | None = None
    case_file: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 no failure, 1 a failure found, 3 incomplete (the target could not run, an interruption, an error)."""
        return CODES[self.outcome]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "target": self.target,
            "budget": {"examples": self.budget.examples, "steps": self.budget.steps, "time": self.budget.seconds},
            "seed": self.budget.seed,
            "outcome": self.outcome,
            "reason": self.reason,
            "sequences": self.sequences,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "clauses": self.clauses,
            "failed_clause": self.failure.clause if self.failure else None,
            "case": f"found/{self.case_file.name}" if self.case_file else None,
        }


def parse_options(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` driver options as a dict; ExploreUsage for any other shape."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ExploreUsage(f"--option {item!r}: expected KEY=VALUE")
        options[key] = value
    return options


def explore(target_name: str, *, options: list[str] = (), out: Path = Path("reports"), examples: int = 100,
            steps: int = 100, seconds: float | None = None, seed_value: int | None = None, timeout: float = 60.0,
            shrink_seconds: float = SHRINK_SECONDS, say: Callable[[str], None] = print) -> Exploration:  # fmt: skip
    """Explore one target within the budget; write records, reports and any found case under ``out``.

    ``shrink_seconds``: how long Hypothesis may shrink a failure before the shortest so far is kept.
    """
    for name, value in (("--examples", examples), ("--steps", steps), ("--time", seconds), ("--timeout", timeout),
                        ("--shrink-time", shrink_seconds)):  # fmt: skip
        if value is not None and value <= 0:
            raise ExploreUsage(f"{name} must be positive, not {value:g}")
    given = parse_options(list(options))
    target = Target.parse(target_name, given)
    load_driver_class(target.driver)  # an unknown driver is a usage error before anything is written
    redactor = Redactor()
    redactor.learn_options(given)
    out = out.resolve()
    outputs.reset(out)
    run_id, started = new_run_id(), dt.datetime.now(dt.UTC)
    seed_used = random.getrandbits(32) if seed_value is None else seed_value
    budget = Budget(examples, steps, seconds, seed_used, shrink_seconds)
    result = Exploration(target.name, run_id, budget)
    ledger = Ledger(out / "ledger" / f"{run_id}-explore.jsonl", run_id)
    ledger.log("open", target.name, "", options=redactor.pairs(target.options))  # what `gspc clean` reopens
    watch_user_interrupts()
    try:
        try:
            opened = open_target(target, learn=redactor.learn_options)
        except TargetUnavailable as exc:
            result.outcome, result.reason = "not-run", str(exc)
        else:
            try:
                _run(opened, ledger, out, result, timeout, redactor)
            finally:
                opened.close()
    finally:
        ledger.close()
    _write_records(out, result, target.driver, redactor)
    finalize(out, run_id, started)
    (out / "explore").mkdir(parents=True, exist_ok=True)
    shown = json.dumps(redactor.clean(result.as_dict()), indent=2, ensure_ascii=False)  # a reason may quote a driver
    (out / "explore" / f"{safe_name(target.name)}.json").write_text(shown + "\n", encoding="utf-8")
    for line in _lines(result, out):
        say(printable(redactor.scrub(line)))
    return result


def _run(opened: OpenTarget, ledger: Ledger, out: Path, result: Exploration, timeout: float,
         redactor: Redactor) -> None:  # fmt: skip
    """Run the state machine until the budget ends or a failure is shrunk; fill in ``result``."""
    budget, target = result.budget, result.target
    start = time.perf_counter()
    ctx = Context(opened.driver, target, opened.capabilities, ledger, redactor, f"gspc-{result.run_id}", timeout,
                  ends=None if budget.seconds is None else start + budget.seconds,
                  shrink_seconds=budget.shrink)  # fmt: skip
    config = settings(
        max_examples=budget.examples,
        stateful_step_count=budget.steps,
        deadline=None,
        database=DirectoryBasedExampleDatabase(out / "explore" / "hypothesis-db" / safe_name(target)),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
        phases=[p for p in Phase if p is not Phase.explain],  # explaining re-runs the failure many times over
    )
    # seeding the machine class, not the test, keeps the example database: a re-run replays a saved failure first
    machine = machine_for(ctx)
    test = get_state_machine_test(seed(budget.seed)(machine), settings=config)
    try:
        test()
    except Contradiction as exc:
        result.failure = minimize(machine, exc)
    except BudgetSpent:
        if ctx.best is not None:
            result.failure = minimize(machine, ctx.best)
    except CaseTimeout as exc:
        result.failure, result.reason = _timed_out(ctx, exc, timeout), "timed out"
    except KeyboardInterrupt:
        result.outcome, result.reason = "interrupted", "the exploration was interrupted (Ctrl-C)"
    except BaseExceptionGroup as group:  # Hypothesis could not make the shrunk sequence fail again
        found = [e for e in group.exceptions if isinstance(e, Contradiction)]
        if found:
            result.failure, result.reason = found[0], "flaky: the shrunk sequence did not fail again"
        else:
            _broken(result, ctx, machine, group, redactor)
    except Exception as exc:  # Hypothesis refused the machine or gave up shrinking, or the harness broke
        _broken(result, ctx, machine, exc, redactor)
    result.seconds = time.perf_counter() - start
    result.sequences, result.steps = ctx.examples, ctx.steps
    result.clauses = sorted(ctx.checked)
    result.leftovers = list(dict.fromkeys(ctx.leftovers))
    if result.failure is not None:
        result.outcome = "failed"
        note = f"run {result.run_id}, seed {budget.seed}"
        result.case_file = write_case(out / "found", result.failure, target, note, redactor)
    elif result.outcome == "passed" and not ctx.checked:
        result.outcome, result.reason = (
            "not-applicable",
            "no step was judged: the target declares no operation explore generates, or the budget ended first",
        )


def _broken(result: Exploration, ctx: Context, machine: Any, exc: BaseException, redactor: Redactor) -> None:
    """After a failure was found, Hypothesis may still stop with an error of its own (an inconsistent replay
    while shrinking): the failure stands, shrunk from the shortest one seen. Before one, there is no verdict."""
    if ctx.best is not None:
        result.failure = minimize(machine, ctx.best)
    else:
        result.outcome, result.reason = "error", f"harness error: {type(exc).__name__}: {redactor.scrub(str(exc))}"


def _timed_out(ctx: Context, exc: CaseTimeout, timeout: float) -> Contradiction:
    """The unshrunk sequence whose last step hung, as a failure of that step's clause."""
    steps = ctx.machine.steps
    checks = steps[-1].checks
    miss = Mismatch(f"the step to finish within {timeout:g} s", str(exc))
    return Contradiction(checks[0].clause if checks else "errors.taxonomy", steps, steps[-1].expect, miss)


def _write_records(out: Path, result: Exploration, driver: str, redactor: Redactor) -> None:
    """One failed record for the contradicted clause and one passed record per other clause judged."""
    common = {"duration": round(result.seconds, 6), "leftovers": result.leftovers}
    rows = []
    failure = result.failure
    if failure is not None:
        steps = len(failure.steps)
        rows.append(record(
            result.run_id, result.target, driver, failure.clause, result.case_file.stem,
            f"A generated sequence shrunk to {steps} steps contradicts {failure.clause}", result.budget,
            outcome="failed", reason=result.reason, steps=[s.trace for s in failure.steps],
            failure={"step": steps, "op": failure.steps[-1].op, "expected": failure.expected,
                     "actual": failure.actual}, **common))  # fmt: skip
    elif result.outcome != "passed":
        rows.append(record(result.run_id, result.target, driver, FALLBACK, SPEC, TITLE, result.budget,
                           outcome=result.outcome if result.outcome in ("not-run", "not-applicable") else "error",
                           reason=result.reason, **common))  # fmt: skip
    judged = [c for c in result.clauses if failure is None or c != failure.clause]
    title = f"{result.sequences} generated sequences, {result.steps} steps, met this clause on every step"
    for index, cid in enumerate(judged):
        extra = common if not rows and index == 0 else {"duration": common["duration"]}
        rows.append(record(result.run_id, result.target, driver, cid, case_id(cid), title, result.budget, **extra))
    writer = RecordWriter(out / "records" / "explore.jsonl", redactor)
    try:
        for row in rows:
            writer.write(row)
    finally:
        writer.close()


def _lines(result: Exploration, out: Path) -> list[str]:
    rate = result.steps / result.seconds if result.seconds else 0.0
    lines = [f"gspc explore {result.target}: {result.sequences} sequences, {result.steps} steps in "
             f"{result.seconds:.1f} s ({rate:,.0f} steps/s), seed {result.budget.seed}"]  # fmt: skip
    failure = result.failure
    if failure is not None:
        lines.append(f"gspc explore: {failure.clause} contradicted at step {len(failure.steps)} "
                     f"({failure.steps[-1].op}): expected {failure.expected}, got {failure.actual}")  # fmt: skip
        lines.append(f"gspc explore: the shrunk case is {_shown(result.case_file)}; replay it with "
                     f"gspc run --target {result.target} --specs-dir {_shown(result.case_file.parent)}")  # fmt: skip
    elif result.outcome == "passed":
        lines.append(f"gspc explore: no failure; {len(result.clauses)} clauses judged")
    else:
        lines.append(f"gspc explore: {result.outcome}: {result.reason}")
    lines.append(f"gspc explore: records, summary, junit.xml and index.html in {_shown(out)}")
    return lines


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
