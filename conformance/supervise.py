"""Run the pytest child of a run under a watchdog no driver can switch off.

The child writes a "running" line when a case starts and its record when it ends, and phase
events (opening, closing, done). A case that runs past its timeout plus a grace period, a phase
that makes no progress as long, or a process that lingers after it is done gets its process
group killed. The hung case is recorded as the driver's failure, and a fresh child runs the
cases that had not finished, so every other case and target still gets its result.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from conformance import outputs
from conformance.records import RecordWriter, ended, read_records
from conformance.redact import Redactor
from conformance.report.terminal import printable

GRACE = 2.0  # seconds past a case's own timeout before the watchdog ends its process
POLL = 0.1
LINE_LIMIT = 8192  # characters of one line of the child's output shown on the terminal
INTERRUPT_WAIT = 5.0  # seconds a child gets to stop after Ctrl-C before it is killed
PYTEST_USAGE = "ERROR: "  # how pytest prints a UsageError


@dataclass
class Attempt:
    """How one child ended."""

    code: int | None = None
    culprit: dict[str, Any] | None = None  # the "running" line of the case the watchdog ended
    stuck: str | None = None  # a phase the watchdog ended (opening or closing a target, collecting)
    lingered: bool = False  # the child was done but did not exit (a non-daemon thread, say)
    interrupted: bool = False
    done: bool = False  # the child reached its end of session
    started: int = 0  # cases it started: each ends settled (finished, hung or dead), so restarts end


@dataclass
class Ending:
    """How a supervised run ended: the last attempt, and what the watchdog had to end on the way."""

    last: Attempt
    attempts: int
    notes: list[str] = field(default_factory=list)


class Tail:
    """The new complete JSON lines of the files in some folders, read as they are written."""

    def __init__(self, *folders: Path) -> None:
        self.folders = folders
        self.offsets: dict[Path, int] = {}

    def read(self) -> Iterator[dict[str, Any]]:
        for folder in self.folders:
            for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
                yield from self._new_lines(path)

    def _new_lines(self, path: Path) -> Iterator[dict[str, Any]]:
        offset = self.offsets.get(path, 0)
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.offsets[path] = offset + end
        for line in chunk[:end].splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                yield value


def supervise(
    command: list[str],
    env: dict[str, str],
    out: Path,
    timeout: float,
    redactor: Redactor,
    busy: Callable[[], bool] = lambda: False,
) -> Ending:
    """Run ``command`` (pytest) until every collected case has ended, restarting it past hung or dead cases.

    While ``busy()`` (the run's backends are starting, and the child waits for them) the run is making progress.
    """
    tail = Tail(out / "records", out / "progress")
    writer = RecordWriter(out / "records" / "supervisor.jsonl", redactor)
    notes: list[str] = []
    selection: list[str] = []
    attempts = 0
    try:
        while True:
            attempts += 1
            args = [*command, "--gspc-only", str(out / "selections" / f"{attempts}.jsonl")] if selection else command
            attempt = _attempt(args, env, tail, timeout, redactor, busy)
            if attempt.culprit is not None:
                reason = f"the driver did not return within {timeout:g} s; the watchdog ended its process"
                base = (outputs.manifest(out) or {}).get(attempt.culprit["nodeid"], {})
                writer.write(ended({**base, **attempt.culprit}, "failed", reason))
                notes.append(f"{attempt.culprit['nodeid']}: {reason}")
            if attempt.stuck:
                notes.append(attempt.stuck)
            if attempt.lingered:
                notes.append("the run's process did not exit when it was done (a driver thread left running?); ended")
            selection = _unfinished(out, attempt)
            if attempt.interrupted or attempt.done or not selection or not attempt.started or attempt.stuck:
                return Ending(attempt, attempts, notes)
            outputs.write_selection(out / "selections" / f"{attempts + 1}.jsonl", selection)
    finally:
        writer.close()


def _unfinished(out: Path, attempt: Attempt) -> list[str]:
    """Collected cases a fresh child should run: not ended, and not the one that took its process down."""
    expected = outputs.manifest(out) or {}
    finished, started = set(), set()
    for record in read_records(out / "records"):
        (started if record["outcome"] == "running" else finished).add(record["nodeid"])
    # a case whose process died under it is not run again (it would take the next one down too); cases the
    # watchdog interrupted beside a hung one were innocent and run again
    dead = set() if attempt.culprit is not None else started
    return sorted(set(expected) - finished - dead)


def _attempt(
    args: list[str], env: dict[str, str], tail: Tail, timeout: float, redactor: Redactor, busy: Callable[[], bool]
) -> Attempt:
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    relays = [
        threading.Thread(target=_relay, args=(stream, sink, redactor), daemon=True)
        for stream, sink in ((child.stdout, sys.stdout), (child.stderr, sys.stderr))
    ]
    for relay in relays:
        relay.start()
    attempt = Attempt()
    try:
        _watch(child, tail, timeout, attempt, busy)
    except KeyboardInterrupt:
        attempt.interrupted = True
        _signal(child, signal.SIGINT)
        try:
            child.wait(INTERRUPT_WAIT)
        except subprocess.TimeoutExpired:
            _signal(child, signal.SIGKILL)
    finally:
        attempt.code = child.wait()
        for relay in relays:
            relay.join(timeout=5)
    return attempt


def _watch(child: subprocess.Popen, tail: Tail, timeout: float, attempt: Attempt, busy: Callable[[], bool]) -> None:
    limit = timeout + GRACE
    running: dict[str, tuple[dict[str, Any], float]] = {}
    phases: dict[Any, dict[str, Any]] = {}
    last = time.monotonic()
    done_at: float | None = None
    while True:
        try:
            child.wait(POLL)
            exited = True
        except subprocess.TimeoutExpired:
            exited = False
        now = time.monotonic()
        if busy():
            last = now
        for line in tail.read():
            last = now
            if "event" in line:
                phases[line.get("pid")] = line
                if line["event"] == "done" and line.get("process") in ("main", None):
                    done_at = now
                    attempt.done = True
            elif line.get("outcome") == "running":
                attempt.started += 1
                running[line["nodeid"]] = (line, now)
            else:
                running.pop(line.get("nodeid"), None)
        if exited:
            return
        hung = sorted((since, line["nodeid"], line) for line, since in running.values() if now - since > limit)
        if hung:
            attempt.culprit = hung[0][2]
        elif done_at is not None and now - done_at > GRACE:
            attempt.lingered = True
        elif now - last > limit:
            attempt.stuck = _stuck(phases.values(), timeout)
        else:
            continue
        _signal(child, signal.SIGKILL)
        return


def _stuck(phases: Any, timeout: float) -> str:
    """What a process that stopped making progress was doing, as a line for the user."""
    for phase in phases:
        if phase["event"] == "open":
            return f"target {phase['target']}: opening did not finish within {timeout:g} s; the watchdog ended it"
        if phase["event"] == "close":
            return f"target {phase['target']}: close() did not return within {timeout:g} s; the watchdog ended it"
    return f"the run made no progress for {timeout + GRACE:g} s; the watchdog ended it"


def _signal(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


def _relay(stream: IO[bytes] | None, sink: IO[str], redactor: Redactor) -> None:
    """Copy the child's output to ours, scrubbed of secrets, escaped and bounded line by line."""
    if stream is None:
        return
    while piece := stream.readline(LINE_LIMIT):
        text = piece.decode("utf-8", errors="replace")
        newline = text.endswith("\n")
        line = text.rstrip("\n")
        if line.startswith(PYTEST_USAGE):  # the plugin refused its configuration: say it in gspc's voice
            line = "gspc: " + line.removeprefix(PYTEST_USAGE)
        sink.write(printable(redactor.scrub(line), LINE_LIMIT) + ("\n" if newline else ""))
        sink.flush()
