"""Hostile drivers get a complete, bounded verdict: their own failure, never a crash or a harness error."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hostile_drivers
import pytest
from conftest import gspc

from conformance.engine.expect import describe, summary
from conformance.engine.interrupts import CaseTimeout, deadline
from conformance.engine.runner import CaseRun, run_case
from conformance.engine.safe import LIMIT, bounded, rep, text
from conformance.engine.tracker import Ledger, Tracker
from conformance.redact import Redactor
from conformance.spec.loader import bundled_specs_dir, load_spec

HOSTILE = {cls.__name__: cls for cls in hostile_drivers.HOSTILE}
RECORD_STRING = 5 * 1024  # the longest string a record may hold: 4 KiB and a truncation note, with room
OUTPUT = 5 * 1024 * 1024  # the most a run's folder, or its terminal output, may hold, even after a 20 MB flood


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _runs(cls: type, tmp_path: Path) -> list[CaseRun]:
    """Every case of the driver's spec its declaration admits, run on the engine alone (no pytest, no cleanup)."""
    driver = cls()
    caps = driver.capabilities()
    spec = load_spec(bundled_specs_dir() / f"{cls.spec}.yaml")
    ledger = Ledger(tmp_path / "ledger.jsonl", "hostile")
    runs = []
    for case in spec.cases:
        admitted = all(caps.has(t) for t in case.requires) and not any(caps.has(t) for t in case.unless)
        if not admitted or any(step.is_fault for step in case.steps):
            continue
        for index, expansion in enumerate(case.expansions()):
            params = {name: value for name, (_, value) in expansion.items()}
            tracker = Tracker(driver, "hostile", f"gspc-hostile/{case.id}/{index}/", ledger)
            runs.append(run_case(case, params, tracker, caps.limits, Redactor(environ={}), CaseRun()))
    ledger.close()
    return runs


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_engine_judges_the_driver(name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Each hostile driver fails its cases with a failure that names what it did, in bounded, encodable text."""
    cls = HOSTILE[name]
    runs = _runs(cls, tmp_path)
    capfd.readouterr()  # the flooding drivers' 20 MB are not this test's output
    failures = [run.failure for run in runs if run.failure]
    assert failures, f"{name}: no case failed"
    assert any(cls.does in f["actual"] for f in failures), [f["actual"][:300] for f in failures]
    for run in runs:
        picture = {"steps": run.steps, "failure": run.failure}
        json.dumps(picture, ensure_ascii=False).encode("utf-8")  # as the record writer encodes: no lone surrogate
        for found in _strings(picture):
            assert len(found) <= LIMIT, f"{name}: a {len(found)}-character string in a record"
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in found), f"{name}: raw control in {found!r}"
    for failure in failures:
        assert set(failure) == {"step", "op", "expected", "actual", "clauses"}
        assert isinstance(failure["step"], int) and failure["op"] and failure["expected"]


def test_a_huge_message_is_cut_with_its_length() -> None:
    message = bounded("x" * (10 * 1024 * 1024))
    assert len(message) == LIMIT
    assert message.endswith("... [truncated: 10485760 chars]")


def test_controls_and_lone_surrogates_are_escaped() -> None:
    assert bounded("a\x1b[31mb\r\n\x07\udcff\x9b") == "a\\x1b[31mb\\r\\n\\x07\\udcff\\x9b"
    assert bounded("路径 with space") == "路径 with space"  # printable text is left alone


def test_escaping_cannot_grow_past_the_limit() -> None:
    message = bounded("\x1b" * LIMIT)
    assert len(message) == LIMIT
    assert message.endswith(f"[truncated: {LIMIT} chars]")


def test_unprintable_values_become_placeholders() -> None:
    bad = hostile_drivers.Unprintable()
    assert text(bad) == "<unprintable Unprintable: str() raised RuntimeError>"
    assert rep(bad) == "<unprintable Unprintable: repr() raised RuntimeError>"
    assert summary(bad, "") == "<unprintable Unprintable: repr() raised RuntimeError>"
    error = hostile_drivers.RawUnprintableError()
    assert describe((None, error), "").endswith("<unprintable RawUnprintableError: str() raised SystemExit>")


def test_an_object_with_hostile_fields_is_summarised() -> None:
    obj = hostile_drivers.Object(path="p\x1b", mode="rw", size=hostile_drivers.Unprintable())
    obj.system = {"k": hostile_drivers.Unprintable(), "huge": "y" * 100_000}
    picture = summary(obj, "")
    assert picture["path"] == "p\\x1b" and picture["mode"] == "'rw'"
    assert picture["size"] == "<unprintable Unprintable: repr() raised RuntimeError>"
    assert picture["system"]["k"] == "<unprintable Unprintable: str() raised RuntimeError>"
    assert len(picture["system"]["huge"]) == LIMIT
    json.dumps(picture)


def test_a_deadline_inside_a_hostile_str_still_stops_the_case() -> None:
    class Slow:
        def __str__(self) -> str:
            raise CaseTimeout("the case did not finish")

    with pytest.raises(CaseTimeout):
        text(Slow())


def test_a_deadline_ends_its_block_and_gives_the_alarm_back() -> None:
    def theirs(signum: int, frame: Any) -> None:
        raise AssertionError("the deadline's alarm reached the handler it replaced")

    before = signal.signal(signal.SIGALRM, theirs)
    try:
        with pytest.raises(CaseTimeout, match="too slow"), deadline(0.05, "too slow"):
            time.sleep(5)
        assert signal.getsignal(signal.SIGALRM) is theirs
        with deadline(5, "not reached"):
            pass
        assert signal.getsignal(signal.SIGALRM) is theirs
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        signal.signal(signal.SIGALRM, before)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_run_gives_a_bounded_verdict(name: str, tmp_path: Path) -> None:
    """Through gspc: non-conformant (exit 1), reports written, every record and the terminal bounded and clean."""
    cls = HOSTILE[name]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS")} | {"NO_COLOR": "1"}
    done = gspc("run", "--driver", f"hostile_drivers:{name}", "--spec", cls.spec, "--out", "out", cwd=tmp_path, env=env)
    terminal = done.stdout + done.stderr
    head = f"{name}: exit {done.returncode}\n{terminal[:1500]}\n...\n{terminal[-1500:]}"
    assert done.returncode == 1, head
    assert "Traceback" not in terminal and "INTERNALERROR" not in terminal, head
    out = tmp_path / "out"
    assert (out / "summary.json").is_file() and (out / "index.html").is_file(), head
    records = [json.loads(line) for line in (out / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert not [r for r in records if r["outcome"] in ("error", "not-run")], head
    failed = [r for r in records if r["outcome"] == "failed"]
    assert any(cls.does in r["failure"]["actual"] for r in failed), [r["failure"] for r in failed][:3]
    longest = max((len(s) for r in records for s in _strings(r)), default=0)
    assert longest <= RECORD_STRING, f"{name}: a {longest}-character string in records.jsonl"
    for path in out.rglob("*"):
        if path.is_file():
            path.read_bytes().decode("utf-8")  # strict: no lone surrogate reached a file
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size <= OUTPUT, f"{name}: the output folder holds {size} bytes"
    assert len(terminal) <= OUTPUT, f"{name}: the terminal got {len(terminal)} characters"
    assert "\x1b" not in terminal, f"{name}: a raw escape reached the terminal"
