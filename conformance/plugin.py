"""pytest plugin: spec files become items (case x params x target), run on tracked drivers, recorded.

Inert unless ``--gspc-target`` is given. Each finished case is one JSON line in
``<out>/records/<worker>.jsonl``; at the end the records are merged and judged (summary.json).
Not rewritten by pytest (PYTEST_DONT_REWRITE): workers forked from a fork server have it imported already.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conformance import hookspec, outputs
from conformance.driver import DriverError
from conformance.engine.case import execute, gate
from conformance.engine.interrupts import CaseTimeout, deadline, watch_user_interrupts
from conformance.engine.runner import CaseRun, judged_clause
from conformance.engine.tracker import Tracker
from conformance.forkserver import READY_WAIT, ForkServer, fork_server_works, preloadable
from conformance.records import ended, failed_clauses, new_record, new_run_id
from conformance.redact import Redactor
from conformance.report import summary as summary_report
from conformance.report.junit import explain
from conformance.report.terminal import behaviour_lines, matrix, printable
from conformance.run import RunError, RunState, Settings
from conformance.spec.limits import DEFAULT_LIMITS, SpecLimits
from conformance.spec.lint import lint
from conformance.spec.loader import SpecError, load_spec, trust_schema_checked
from conformance.spec.model import Case, Clause, Spec
from conformance.targets import Target, TargetUnavailable, as_json
from conformance.waivers import judge

STATE = pytest.StashKey["RunState"]()
FORK_SERVER = pytest.StashKey["ForkServer | None"]()
FATAL_SIGNALS = frozenset(
    {signal.SIGKILL, signal.SIGTERM, signal.SIGQUIT, signal.SIGABRT, signal.SIGSEGV, signal.SIGHUP}
)
SECTION_LIMIT = 8192  # characters of captured output or failure text a case may put on the terminal
SUMMARY = pytest.StashKey[dict]()
T = TypeVar("T")
STALL = 40  # requests' worth of time a stall fault holds its case: it waits out the driver's timeout


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gspc", "gsp-conformance")
    group.addoption(
        "--gspc-target",
        action="append",
        default=[],
        metavar="TARGET",
        help="run spec files against this target (driver, driver@backend or module:Class); repeatable",
    )
    group.addoption(
        "--gspc-option",
        action="append",
        default=[],
        metavar="[TARGET:]KEY=VALUE",
        help="an option for the targets' drivers (all targets, or the one named); repeatable",
    )
    group.addoption(
        "--gspc-known-issues",
        action="append",
        default=[],
        metavar="FILE",
        help="a known-issues file (waivers) for a target; repeatable",
    )
    group.addoption("--gspc-out", default="reports", metavar="DIR", help="output folder (default: reports)")
    group.addoption(
        "--gspc-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="fail a case that runs longer than this (default: 60)",
    )
    group.addoption(
        "--gspc-max-expansions",
        type=int,
        default=DEFAULT_LIMITS.max_expansions,
        metavar="N",
        help=f"refuse a spec case with more runs than this (default: {DEFAULT_LIMITS.max_expansions:,})",
    )
    group.addoption(
        "--gspc-max-payload",
        type=int,
        default=DEFAULT_LIMITS.max_payload,
        metavar="BYTES",
        help=f"refuse a payload larger than this (default: {DEFAULT_LIMITS.max_payload:,} bytes)",
    )
    group.addoption("--gspc-run-id", default=None, metavar="ID", help="the run id (default: generated)")
    group.addoption(
        "--gspc-latency",
        type=float,
        default=None,
        metavar="SECONDS",
        help="delay every request through a target's fault proxy by this much, for the whole run",
    )
    group.addoption(
        "--gspc-bandwidth",
        type=float,
        default=None,
        metavar="BYTES",
        help="cap bodies through a target's fault proxy at this many bytes a second, for the whole run",
    )
    group.addoption(
        "--gspc-only",
        default=None,
        metavar="FILE",
        help="run only the node ids listed in FILE (one JSON string a line), e.g. the cases an earlier run failed",
    )
    group.addoption(
        "--gspc-endpoints",
        default=None,
        metavar="FILE",
        help="bind targets to the backends the supervisor started (their endpoints as JSON); gspc passes it",
    )
    group.addoption(
        "--gspc-schema-checked",
        default="",
        metavar="SCHEMA:SHA256,...",
        help="files gspc already checked against their schema, by content; gspc passes it",
    )
    group.addoption(
        "--gspc-supervised",
        action="store_true",
        help="gspc supervises this run: it clears the outputs before and judges the records after",
    )


def _run_state(config: pytest.Config) -> RunState:
    trust_schema_checked(filter(None, config.getoption("gspc_schema_checked").split(",")))
    worker = getattr(config, "workerinput", None)
    settings = Settings(
        out=Path(config.getoption("gspc_out")),
        run_id=(worker or {}).get("gspc_run_id") or config.getoption("gspc_run_id") or new_run_id(),
        worker_id=worker["workerid"] if worker else "main",
        controller=worker is None,
        supervised=config.getoption("gspc_supervised"),
        timeout=config.getoption("gspc_timeout"),
        targets=config.getoption("gspc_target"),
        options=config.getoption("gspc_option"),
        known_issues=config.getoption("gspc_known_issues"),
        limits=SpecLimits(
            max_expansions=config.getoption("gspc_max_expansions"),
            max_payload=config.getoption("gspc_max_payload"),
        ),
        endpoints=(worker or {}).get("gspc_endpoints") or config.getoption("gspc_endpoints"),
        latency=config.getoption("gspc_latency"),
        bandwidth=config.getoption("gspc_bandwidth"),
    )
    try:
        return RunState(settings)
    except RunError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("gspc_target", None):
        return
    controller = getattr(config, "workerinput", None) is None
    server = config.stash[FORK_SERVER] = ForkServer() if controller and _forkable(config) else None
    if server is not None:  # pytest and the harness, while this process waits for the backends and opens targets
        server.preload(preloadable())
    state = _run_state(config)
    config.stash[STATE] = state
    if state.controller and not state.settings.supervised:  # under gspc, the supervisor clears them once
        outputs.reset(state.out)
    state.start()
    watch_user_interrupts()
    guard_exits(state)
    for level in ("MUST", "SHOULD", "MAY", "IMPL"):
        config.addinivalue_line("markers", f"{level}: cases of {level} clauses")
    if getattr(config.option, "allure_report_dir", None):  # allure-pytest is loaded and writing results
        from conformance.report.allure_results import AllureCases

        config.pluginmanager.register(AllureCases(config), "gspc-allure")
    if state.controller:
        distributed = _distributed(config)
        try:
            if not config.getoption("gspc_endpoints"):  # pytest without gspc: this process starts the backends
                state.share_backends()
            with server.following_imports() if server is not None else contextlib.nullcontext():
                state.preflight(keep_open=not distributed)
        except DriverError as exc:
            state.close()
            raise pytest.UsageError(state.redactor.scrub(str(exc))) from None
        if server is not None:  # and what opening them imported (an SDK), and the specs the workers collect
            specs = [path for path in map(Path, config.args) if path.suffix == ".yaml" and path.is_file()]
            server.finish_preload(preloadable(), specs, state.limits)


def _forkable(config: pytest.Config) -> bool:
    """Whether this run's workers can be forked from a fork server: plain local ones (``-n``), on Linux."""
    return _distributed(config) and fork_server_works() and all(spec == "popen" for spec in config.getoption("tx"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    """Start the workers through the fork server's launcher."""
    server = config.stash.get(FORK_SERVER, None)
    if server is not None and server.ready(within=min(READY_WAIT, config.stash[STATE].timeout)):
        for spec in specs:
            spec.python = server.python


def pytest_sessionstart(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None:
        state.dump_crashes()


def guard_exits(state: RunState) -> None:
    """A driver that ends its own process (os._exit, a fatal signal to itself) fails the case it was running.

    The case's record is written before the process goes, so the verdict blames the driver; a process
    killed from outside writes nothing, and its case is reported as an error (the run is incomplete).
    """
    real_exit, real_kill = os._exit, os.kill

    def record_death(how: str) -> None:
        if state.running is not None:
            state.record(ended(state.running, "failed", f"the driver ended its own process ({how}) during this case"))
            state.running = None

    def exit_recorded(code: int) -> None:
        record_death(f"os._exit({code})")
        real_exit(code)

    def kill_recorded(pid: int, signum: int) -> None:
        if pid in (0, os.getpid()) and signum in FATAL_SIGNALS:
            record_death(f"os.kill with {signal.Signals(signum).name}")
        real_kill(pid, signum)

    os._exit, os.kill = exit_recorded, kill_recorded


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Give every xdist worker the controller's run id and the endpoints of the run's backends."""
    state = node.config.stash.get(STATE, None)
    if state is not None:
        node.workerinput["gspc_run_id"] = state.run_id
        node.workerinput["gspc_endpoints"] = as_json(state.endpoints)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if STATE in parent.config.stash and file_path.suffix == ".yaml":
        return SpecFile.from_parent(parent, path=file_path, nodeid=file_path.stem)
    return None


class SpecFile(pytest.File):
    """A spec file: one item per case x params x target."""

    def collect(self):
        state = self.config.stash[STATE]
        spec = load_spec(self.path, state.limits)
        problems = lint([spec], state.limits)
        if problems:
            raise SpecError(problems)
        state.redactor.learn_specs([spec])
        marks = _marks(self.config, spec)
        for case in spec.cases:
            clause = spec.clauses[case.clause]
            case_marks = [marks[spec.name].mark, marks[clause.level].mark, marks[clause.id].mark]
            keywords = {m.name: m for m in case_marks}
            for index, expansion in enumerate(case.expansions()):
                labels = "".join(f"-{name}={label}" for name, (label, _) in expansion.items())
                params = {name: value for name, (_, value) in expansion.items()}
                for target in state.targets:
                    item = CaseItem.from_parent(
                        self,
                        name=f"{case.id}[{target.name}{labels}]",
                        spec=spec,
                        case=case,
                        clause=clause,
                        target=target,
                        params=params,
                        labels={name: label for name, (label, _) in expansion.items()},
                        index=index,
                    )
                    item.own_markers.extend(case_marks)  # add_marker per mark costs ~20 us an item at 10,000 items
                    item.keywords.update(keywords)
                    yield item

    def repr_failure(self, excinfo, style=None) -> str:
        if isinstance(excinfo.value, SpecError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --gspc-only, keep exactly the items whose node ids it lists (exact equality, as pytest's --lf).

    Under xdist the items are dealt so each worker's first run is about as heavy as the others, longest first
    (see dealt): no worker is left running long cases while the others idle at the end.
    """
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if not state.controller:  # an xdist worker; every worker orders alike, so their collections still match
        items[:] = dealt(items, config.workerinput["workercount"], _item_weight)
    source = config.getoption("gspc_only", None)
    if not source:
        return
    try:
        wanted = outputs.read_selection(Path(source))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"--gspc-only {source}: {exc}") from None
    # exact node id equality: params with spaces, unicode, brackets or '::' need no escaping
    keep = [item for item in items if item.nodeid in wanted]
    dropped = [item for item in items if item.nodeid not in wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def _distributed(config: pytest.Config) -> bool:
    return getattr(config.option, "dist", "no") != "no"


def dealt(items: list[T], workers: int, weigh: Callable[[T], int]) -> list[T]:
    """The items as one run of consecutive items a worker, as worksteal first hands them out.

    Each run is about as heavy as the others, and longest first, so no worker is left with the long cases
    at the end and what stealing moves is short. The heaviest item goes to the lightest run with room,
    runs sized as worksteal splits (of the items left, an equal share for each worker left).
    """
    sizes, left = [], len(items)
    for share in range(workers, 0, -1):
        sizes.append(left // share)
        left -= sizes[-1]
    runs: list[list[T]] = [[] for _ in sizes]
    loads = [0] * len(sizes)
    for weight, item in sorted(((weigh(item), item) for item in items), key=lambda pair: -pair[0]):
        run = min((r for r in range(len(runs)) if len(runs[r]) < sizes[r]), key=loads.__getitem__)
        runs[run].append(item)
        loads[run] += weight
    return [item for run in runs for item in run]


def _item_weight(item: pytest.Item) -> int:
    return _weight(item.case) if isinstance(item, CaseItem) else 0


def _weight(case: Case) -> int:
    """A case's expected length in requests: each call once (a write twice, for its cleanup), a stall as STALL.

    A step repeated for listing pages counts as many copies as an unpaged target makes (the most it can be):
    every worker must weigh alike before any target is open.
    """
    weight = 0
    for step in case.steps:
        if step.is_fault:
            weight += STALL if step.args.get("kind") == "stall" else 0
        else:
            weight += step.copies(None) * (2 if step.op == "write" else 1)
    return weight


@pytest.hookimpl(trylast=True)  # after xdist has sent this worker's collection to the controller
def pytest_collection_finish(session: pytest.Session) -> None:
    """Write what this process will run before it runs any of it: a case that never ends is then still known.

    An xdist worker then opens its targets while the controller waits for the slowest worker's collection;
    one that fails to open is opened again by its first case, which records why.
    """
    state = session.config.stash.get(STATE, None)
    if state is None or (state.controller and _distributed(session.config)):
        return  # an xdist controller collects nothing; its workers write the manifest
    bases = (item.base for item in session.items if isinstance(item, CaseItem))
    outputs.write_manifest(state.out, state.worker_id, bases)
    if not state.controller and session.items:
        with contextlib.suppress(Exception):  # whatever it was, the first case meets it again and records it
            state.preflight(keep_open=True)


def _marks(config: pytest.Config, spec: Spec) -> dict[str, pytest.MarkDecorator]:
    """Mark decorators for the spec, its levels and clauses, registered so -m can select them."""
    names = [spec.name, *spec.clauses]
    for name in names:
        config.addinivalue_line("markers", f"{name}: cases of {spec.id} ({name})")
    return {name: getattr(pytest.mark, name) for name in [*names, "MUST", "SHOULD", "MAY", "IMPL"]}


class CaseFailure(AssertionError):
    """A case whose driver did not do what its clause requires (AssertionError: 'failed', not 'broken')."""


class CaseError(Exception):
    """The harness or the environment broke while running a case."""


class CaseItem(pytest.Item):
    """One case of one spec, with one set of params, on one target."""

    def __init__(
        self,
        *,
        spec: Spec,
        case: Case,
        clause: Clause,
        target: Target,
        params: dict[str, Any],
        labels: dict[str, str],
        index: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec, self.case, self.clause, self.target = spec, case, clause, target
        self.params, self.labels, self.index = params, labels, index

    @property
    def base(self) -> dict[str, Any]:
        """The fields of this case's record that are known before it runs."""
        state: RunState = self.config.stash[STATE]
        name = self.target.name
        return new_record(state.run_id, self.spec, self.clause, self.case, name, self.target.driver, self.nodeid,
                          self.labels)  # fmt: skip

    def runtest(self) -> None:
        state: RunState = self.config.stash[STATE]
        record = {**self.base, "worker": state.worker_id}
        state.running = record
        # if the process dies now, the merge still sees the case (the rest of its record is in the manifest)
        state.record({"nodeid": self.nodeid, "target": self.target.name, "worker": state.worker_id,
                      "pid": os.getpid(), "outcome": "running"})  # fmt: skip
        run = CaseRun()
        start = time.perf_counter()
        try:
            with deadline(state.timeout, f"the case did not finish within {state.timeout:g} s"):
                outcome, reason = self._run(state, run, record)
        except CaseTimeout as exc:
            step = len(run.steps) + 1
            run.failure = {
                "step": step,
                "op": _op_at(self.case, step),
                "expected": f"the step to finish within {state.timeout:g} s",
                "actual": str(exc),
            }
            outcome, reason = "failed", "timed out"
        except KeyboardInterrupt:  # the user's (a driver's own is judged as data): the case did not finish
            state.running = None
            state.record(ended(record, "error", "the run was interrupted (Ctrl-C) during this case"))
            raise
        except Exception as exc:
            outcome, reason = (
                "error",
                f"harness error: {type(exc).__name__}: {state.redactor.scrub(str(exc))}",
            )
        record.update(
            outcome=outcome,
            reason=state.redactor.scrub(reason) if reason else None,
            duration=round(time.perf_counter() - start, 6),
            steps=run.steps,
            failure=run.failure,
            behaviour=self._behaviour(run) if outcome == "observed" else None,
        )
        state.running = None
        state.record(record)
        if self.config.hook.pytest_gspc_case_finished.get_hookimpls():  # cleaning costs: only for a listener
            self.config.hook.pytest_gspc_case_finished(item=self, record=state.redactor.clean(record))
        self._raise_for(record, state.redactor)

    def _run(self, state: RunState, run: CaseRun, record: dict[str, Any]) -> tuple[str, str | None]:
        try:
            opened = state.driver(self.target)
        except TargetUnavailable as exc:
            return "not-run", str(exc)
        caps = opened.capabilities
        reason = gate(self.case, caps, self.target.name, opened.faults is not None)
        if reason:
            return "not-applicable", reason
        prefix = f"{state.root}/{self.spec.name}/{self.case.id}/{self.index}/"
        tracker = Tracker(opened.driver, self.target.name, prefix, state.journal())
        try:
            execute(self.case, self.params, tracker, caps, state.redactor, run, state.limits.max_payload,
                    opened.faults, opened.list_page_size)  # fmt: skip
        finally:
            record["leftovers"] = run.leftovers
        if self.clause.level == "IMPL" and run.failure is None:
            return "observed", None  # one of the behaviours the spec lists; anything else fails the rule it sits under
        failed = failed_clauses({**record, "outcome": "failed", "failure": run.failure}) if run.failure else []
        judged = judge(state.waivers, self.target.name, self.spec.name, self.case.id, judged_clause(self.case), failed)
        record["waiver"] = judged.waiver
        for entry in failed:  # each failed clause shows the waiver that covers it
            if entry["clause"] in judged.covered:
                entry["waiver"] = judged.covered[entry["clause"]]
        return judged.outcome, judged.reason

    @staticmethod
    def _behaviour(run: CaseRun) -> str:
        return ", ".join(run.labels) or "as the spec lists"

    def _raise_for(self, record: dict[str, Any], redactor: Redactor) -> None:
        outcome, reason = record["outcome"], record["reason"]
        if outcome in ("not-applicable", "not-run"):
            pytest.skip(f"{outcome}: {redactor.scrub(reason or '')}")
        if outcome == "waived":
            pytest.xfail(reason or "waived")
        if outcome in ("error", "failed", "unexpectedly-passed"):
            where = f"\n  case {self.case.id}: {self.case.title}  ({self.spec.path}:{self.case.line})"
            text = printable(redactor.scrub(explain(record) + where), SECTION_LIMIT)
            raise CaseError(text) if outcome == "error" else CaseFailure(text)

    def repr_failure(self, excinfo, style=None) -> str:
        # a waived case is reported as an xfail, whose traceback pytest would format too (0.3 s of CPU, unshown)
        if isinstance(excinfo.value, CaseFailure | CaseError | pytest.xfail.Exception):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.spec.path, self.case.line - 1, f"{self.spec.name}::{self.name}"


def _op_at(case: Case, step: int) -> str:
    if step > len(case.steps):
        return "cleanup"
    return case.steps[step - 1].op


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    state.close()
    if state.controller and not state.settings.supervised and not session.config.option.collectonly:
        summary = summary_report.finalize(state.out, state.run_id, state.started)
        session.config.stash[SUMMARY] = summary
        session.config.hook.pytest_gspc_run_finished(config=session.config, summary=summary)


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(FORK_SERVER, None)
    if server is not None:
        server.close()
    state = config.stash.get(STATE, None)
    if state is not None and state.events is not None:
        state.events.log("done")  # the watchdog ends a process that lingers after this (a non-daemon thread)
        state.events.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """Captured driver output in a report is scrubbed, escaped and bounded: a flood cannot flood the terminal."""
    report = yield
    state = item.config.stash.get(STATE, None)
    if state is not None and isinstance(item, CaseItem):
        report.sections = [
            (title, printable(state.redactor.scrub(text), SECTION_LIMIT)) for title, text in report.sections
        ]
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    summary = config.stash.get(SUMMARY, None)
    if summary is None:
        return
    terminalreporter.section("gsp-conformance")
    for line in matrix(summary["verdicts"]) + behaviour_lines(summary["behaviours"]):
        terminalreporter.write_line(line)
    out = config.stash[STATE].out
    terminalreporter.write_line(f"run {summary['run_id']}: {summary['verdict']}; records and summary in {_short(out)}")


def _short(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
