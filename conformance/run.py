"""Per-process state of a run: its targets, waivers, limits and redactor, the open targets, the record
writer, the cleanup journal and the phase events the supervisor watches."""

from __future__ import annotations

import contextlib
import datetime as dt
import faulthandler
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from conformance.backends.faultproxy import FaultProxy, apply_run_faults
from conformance.driver import DriverError
from conformance.engine.interrupts import CaseTimeout, deadline
from conformance.engine.tracker import Ledger
from conformance.outputs import Events
from conformance.records import RecordWriter
from conformance.redact import Redactor
from conformance.spec.limits import SpecLimits
from conformance.spec.loader import SpecError
from conformance.targets import OpenTarget, SharedBackends, Target, TargetUnavailable, open_target, read_endpoints
from conformance.waivers import Waiver, run_waivers


class RunError(Exception):
    """The run's own configuration is wrong (an option, a target name, a known-issues file): one line each."""


@dataclass
class Settings:
    """What a process of a run is told: where to write, which targets, under which limits."""

    out: Path
    run_id: str
    worker_id: str = "main"
    controller: bool = True
    supervised: bool = False
    timeout: float = 60.0
    targets: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    known_issues: list[str] = field(default_factory=list)
    limits: SpecLimits = field(default_factory=SpecLimits)
    latency: float | None = None  # seconds added to every proxied request of the run
    bandwidth: float | None = None  # bytes a second every proxied body is paced at
    endpoints: dict[str, Any] = field(default_factory=dict)  # target name -> Endpoint JSON of a shared backend


class RunState:
    """One process's share of a run; every output it writes passes its redactor."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_id, self.worker_id, self.out = settings.run_id, settings.worker_id, settings.out.resolve()
        self.root = f"gspc-{self.run_id}"
        self.timeout, self.limits = settings.timeout, settings.limits
        self.targets = parse_targets(settings.targets, settings.options)
        self.waivers = _waivers(self.targets, settings.known_issues)
        self.redactor = Redactor()  # learns every secret before any driver is opened: environment, options, specs
        for target in self.targets:
            self.redactor.learn_options(target.options)
        try:
            self.endpoints = read_endpoints(settings.endpoints)
        except DriverError as exc:
            raise RunError(str(exc)) from None
        for endpoint in self.endpoints.values():
            self.redactor.learn_options(endpoint.options)
        self._shared: SharedBackends | None = None
        self.started = dt.datetime.now(dt.UTC)
        self.events: Events | None = None  # opened by start(), once stale outputs are gone
        self.running: dict[str, Any] | None = None  # the record of the case in progress, for the exit guard
        self.drivers: dict[str, OpenTarget] = {}
        self.unavailable: dict[str, str] = {}
        self._writer: RecordWriter | None = None
        self._ledger: Ledger | None = None
        self._crashes: IO[str] | None = None

    @property
    def controller(self) -> bool:
        """Whether this process leads the run (not an xdist worker)."""
        return self.settings.controller

    def start(self) -> None:
        """Begin writing phase events (after the outputs of an earlier run are cleared)."""
        self.events = Events(self.out, self.worker_id)

    def dump_crashes(self) -> None:
        """Dump a fatal signal's traceback (a crash in driver code) where the records' merge looks for it."""
        folder = self.out / "crashes"
        folder.mkdir(parents=True, exist_ok=True)
        self._crashes = (folder / f"{os.getpid()}.txt").open("w", encoding="utf-8")
        faulthandler.enable(file=self._crashes)

    def share_backends(self) -> None:
        """Start the targets' backends once for every process of the run (when no supervisor started them)."""
        self._shared = SharedBackends()
        self._shared.start(self.targets, self.redactor.learn_options)
        self.endpoints |= self._shared.endpoints

    def driver(self, target: Target) -> OpenTarget:
        """The open target (opened on first use); TargetUnavailable if it cannot run."""
        if target.name in self.unavailable:
            raise TargetUnavailable(self.unavailable[target.name])
        if target.name not in self.drivers:
            self._event("open", target=target.name)
            try:
                endpoint = self.endpoints.get(target.name)
                opened = open_target(target, endpoint, self.redactor.learn_options)
                if isinstance(opened.faults, FaultProxy):  # a slow-network run shapes every request it proxies
                    apply_run_faults(opened.faults, self.settings.latency, self.settings.bandwidth)
                self.drivers[target.name] = opened
            except TargetUnavailable as exc:
                self.unavailable[target.name] = str(exc)
                raise
            finally:
                self._event("opened", target=target.name)
        return self.drivers[target.name]

    def preflight(self, keep_open: bool) -> None:
        """Open every target once so a bad driver stops the run before any case; DriverError says why."""
        for target in self.targets:
            try:
                with deadline(self.timeout, f"target {target.name}: opening took longer than {self.timeout:g} s"):
                    self.driver(target)
            except TargetUnavailable:
                continue
            except CaseTimeout as exc:
                raise DriverError(str(exc)) from None
            if not keep_open:
                self._close(target.name, self.drivers.pop(target.name))

    def record(self, record: dict[str, Any]) -> None:
        """Append a record (cleaned by the redactor) to this process's records file."""
        if self._writer is None:
            self._writer = RecordWriter(self.out / "records" / f"{self.worker_id}.jsonl", self.redactor)
        self._writer.write(record)

    def journal(self) -> Ledger:
        """This process's cleanup journal, opened with the options of every target (secrets masked)."""
        if self._ledger is None:
            self._ledger = Ledger(self.out / "ledger" / f"{self.run_id}-{self.worker_id}.jsonl", self.run_id)
            for target in self.targets:
                self._ledger.log("open", target.name, "", options=self.redactor.pairs(target.options))
        return self._ledger

    def close(self) -> None:
        """Close every open driver (a failing close costs nothing), then the writer and the journal."""
        for name, driver in self.drivers.items():
            self._close(name, driver)
        self.drivers.clear()
        if self._shared is not None:
            self._shared.close()
        if self._crashes is not None:
            faulthandler.disable()
        for handle in (self._writer, self._ledger, self._crashes):
            if handle is not None:
                handle.close()

    def _close(self, name: str, opened: OpenTarget) -> None:
        self._event("close", target=name)
        with contextlib.suppress(Exception):
            opened.close()
        self._event("closed", target=name)

    def _event(self, event: str, **data: Any) -> None:
        if self.events is not None:
            self.events.log(event, **data)


def parse_targets(names: Iterable[str], options: Iterable[str]) -> list[Target]:
    """Targets by name, each with the ``[TARGET:]KEY=VALUE`` options that apply to it."""
    parsed: list[tuple[str | None, str, str]] = []
    for item in options:
        left, sep, value = item.partition("=")
        scope, _, key = left.rpartition(":")
        if not sep or not key.isidentifier():
            raise RunError(f"option {item!r}: expected [TARGET:]KEY=VALUE")
        parsed.append((scope or None, key, value))
    targets = []
    for name in dict.fromkeys(names):
        try:
            target = Target.parse(name)
        except DriverError as exc:
            raise RunError(str(exc)) from None
        target.options.update({k: v for scope, k, v in parsed if scope in (None, name)})
        targets.append(target)
    unknown = {scope for scope, _, _ in parsed if scope} - {t.name for t in targets}
    if unknown:
        raise RunError(f"options name targets not being run: {', '.join(sorted(unknown))}")
    return targets


def _waivers(targets: list[Target], files: list[str]) -> list[Waiver]:
    try:
        return run_waivers([t.name for t in targets], map(Path, files))
    except SpecError as exc:
        raise RunError(str(exc)) from None
