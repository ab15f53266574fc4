"""The driver protocol: Python, Go and JavaScript drivers certified over stdio; a hostile process fails its case."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import gspc, records

from conformance import errors
from conformance.adapters.memory import MemoryDriver
from conformance.driver import DriverError, Mode
from conformance.protocol import ProcessFailure, exec_driver, serve, wire
from conformance.protocol.process import Channel
from conformance.spec.loader import bundled_specs_dir

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = Path(__file__).resolve().parent / "protocol_drivers"
SCHEMA = json.loads((ROOT / "specs" / "schema" / "protocol.schema.json").read_text(encoding="utf-8"))
PYTHON_MEMORY = f"exec:{sys.executable} -m conformance.protocol conformance.adapters.memory:MemoryDriver"
HOSTILE = f"exec:{sys.executable} {DRIVERS / 'hostile.py'}"
BASE64 = f"exec:{sys.executable} {DRIVERS / 'base64_only.py'}"  # a driver written before binary frames
NODE = shutil.which("node")


def _failed(found: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Failed clause ids per target: the case's own and every invariant a step breached."""
    clauses: dict[str, set[str]] = {}
    for record in found:
        if record["outcome"] == "failed":
            listed = [c["clause"] for c in (record["failure"] or {}).get("clauses") or []] or [record["clause"]]
            clauses.setdefault(record["target"], set()).update(listed)
    return clauses


def _cases(found: list[dict[str, Any]], target: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Outcome and failed clauses per case and params of one target."""
    picked = {}
    for record in found:
        if record["target"] == target:
            failed = _failed([record]).get(target, set())
            picked[f"{record['case']} {json.dumps(record['params'], sort_keys=True)}"] = (record["outcome"], failed)
    return picked


@pytest.fixture(scope="session")
def go_driver(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Go reference driver, built once per session (standard library only: nothing is downloaded)."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed (Debian: apt-get install golang-go)")
    binary = tmp_path_factory.mktemp("go") / "gspc-go-memory"
    cache = tmp_path_factory.getbasetemp() / "go-cache"
    env = {**os.environ, "GOCACHE": str(cache / "build"), "GOPATH": str(cache / "path"), "GOPROXY": "off",
           "CGO_ENABLED": "0"}  # fmt: skip
    built = subprocess.run(["go", "build", "-o", str(binary), "."], cwd=ROOT / "examples" / "go", env=env,
                           capture_output=True, text=True, timeout=180)  # fmt: skip
    assert built.returncode == 0, built.stderr
    return str(binary)


@pytest.fixture(scope="session")
def js_driver() -> str:
    if NODE is None:
        pytest.skip("node is not installed")
    return f"{NODE} {ROOT / 'examples' / 'js' / 'driver.js'}"


# --- the wire and serve() -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        errors.ObjectNotExist("gone", op="stat", path="a/b"),
        errors.PairUnsupported(pair="colour", op="write", path="a"),
        errors.PairRequired(keys=["server_side_encryption"], op="write", path="a"),
        errors.ObjectModeInvalid("no", expected=Mode.APPEND, actual=Mode.READ | Mode.PAGE, op="write_append"),
        errors.RequestThrottled("slow down", retry_after=1.5, op="read", path="a"),
        errors.NetworkError("reset", op="read", path="a"),
    ],
)
def test_taxonomy_errors_cross_the_wire_with_their_attributes(error: errors.StorageError) -> None:
    """An error comes back as its class, with message, op, path, retryable and attributes intact."""
    back = wire.error_from(json.loads(wire.dumps(wire.error_json(error))), "d")
    assert type(back) is type(error) and back.retryable == error.retryable
    assert (back.message, back.op, back.path, back.driver) == (error.message, error.op, error.path, "d")
    for name in ("pair", "keys", "expected", "actual", "retry_after"):
        assert getattr(back, name, None) == getattr(error, name, None)


def test_a_class_outside_the_taxonomy_is_untyped_and_retryable_is_the_drivers_word() -> None:
    assert wire.error_from({"class": "KeyError", "message": "x"}, "d") is None
    said = wire.error_from({"class": "ServiceInternal", "message": "", "retryable": False}, "d")
    assert isinstance(said, errors.ServiceInternal) and said.retryable is False


def _serve(*requests: dict[str, Any] | bytes) -> tuple[int, list[dict[str, Any]]]:
    lines = b"".join(r if isinstance(r, bytes) else wire.dumps(r) for r in requests)
    out = io.BytesIO()
    status = serve(MemoryDriver, io.BytesIO(lines), out)
    return status, [json.loads(line) for line in out.getvalue().splitlines()]


def test_serve_refuses_an_unknown_version_and_exits_2() -> None:
    status, answers = _serve({"seq": 0, "op": "start", "version": 2, "options": {}, "secrets": []})
    assert status == 2
    refused = {"class": "ProtocolError", "message": "protocol version 2 is not supported (this driver speaks 1)"}
    assert answers == [{"seq": 0, "error": refused}]


def test_serve_refuses_malformed_lines_and_goes_on() -> None:
    start = {"seq": 0, "op": "start", "version": 1, "options": {}, "secrets": []}
    status, answers = _serve(b"{not json\n", {"seq": 1, "op": "stat"}, start, {"seq": 2, "op": "rename"})
    assert status == 0
    assert [a["error"]["class"] for a in answers if "error" in a] == ["ProtocolError"] * 3
    assert answers[0]["seq"] is None and "malformed request" in answers[0]["error"]["message"]
    assert "first request must be start" in answers[1]["error"]["message"]
    assert answers[2]["result"]["name"] == "memory" and "unknown op 'rename'" in answers[3]["error"]["message"]


@pytest.mark.parametrize("target", [PYTHON_MEMORY, BASE64])
def test_every_line_of_a_session_follows_the_schema(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests the client writes and answers serve() gives validate against protocol.schema.json, framed or not."""
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []
    exchange = Channel.exchange

    def recorded(self: Channel, parts: list[bytes], timeout: float) -> bytes:
        answer = exchange(self, parts, timeout)
        seen.append((json.loads(parts[0]), json.loads(answer)))
        return answer

    monkeypatch.setattr(Channel, "exchange", recorded)
    driver = exec_driver(target.removeprefix("exec:"))(append_size_maximum=8)
    key = {"server_side_encryption_customer_algorithm": "AES256", "server_side_encryption_customer_key": bytes(32)}
    driver.write("a", b"\x00\xff", content_type="text/plain", **key)
    driver.read("a", offset=1, **key)
    obj = driver.create_append("b")
    driver.write_append(obj, b"xyz")
    driver.commit_append(obj)
    list(driver.list(""))
    for call in (lambda: driver.stat("missing"), lambda: driver.write_append(obj, b"x" * 9)):
        with pytest.raises(errors.StorageError):
            call()
    driver.delete("a")
    driver.close()
    assert obj.append_offset == 3  # the caller's Object moved on, as with a driver in-process
    assert seen[1][0]["secrets"] == ["server_side_encryption_customer_key"]
    framed = target == PYTHON_MEMORY
    assert seen[0][0]["frames"] == 1 and seen[0][1]["result"].get("frames") == (1 if framed else None)
    payloads = [seen[1][0]["data"], seen[2][1]["result"]]  # the write's data, the read's bytes
    assert payloads == ([{"$bytes": 2}, {"$bytes": 1}] if framed else ["AP8=", "/w=="])
    results = {"start": "started", "write": "object", "stat": "object", "create_append": "object",
               "read": "payload", "write_append": "appended"}  # fmt: skip
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    parts = {name: _part(name) for name in {"request", "answer", *results.values()}}
    for request, answer in seen:
        parts["request"].validate(request)
        parts["answer"].validate(answer)
        if "result" in answer and request["op"] in results:
            parts[results[request["op"]]].validate(answer["result"])


def _part(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one definition of the schema, with the others it refers to."""
    return jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{name}"})


@pytest.mark.parametrize(
    ("part", "line"),
    [
        ("answer", {"seq": 1, "result": None, "error": {"class": "Unexpected"}}),
        ("answer", {"seq": 1}),
        ("request", {"seq": 1, "op": "rename", "path": "a", "pairs": {}, "secrets": []}),
        ("request", {"seq": 1, "op": "write", "path": "a", "data": "not base64!", "pairs": {}, "secrets": []}),
        ("request", {"seq": 1, "op": "write", "path": "a", "data": {"$bytes": -1}, "pairs": {}, "secrets": []}),
        ("payload", {"$bytes": 268435457}),
        ("payload", {"$bytes": 3, "base64": "AAAA"}),
        ("object", {"path": "a", "mode": ["readable"]}),
    ],
)
def test_the_schema_refuses_what_is_not_the_protocol(part: str, line: dict[str, Any]) -> None:
    assert not _part(part).is_valid(line)


# --- frames, at the driver's end of each implementation ------------------------------------------

START = {"seq": 1, "op": "start", "version": 1, "frames": 1, "options": {}, "secrets": []}
GARBAGE_AFTER = "malformed frame: a 3-byte frame is followed by byte 0x58, not the newline that ends it"
BAD_MARKER = 'malformed frame: a frame\'s marker must be {"$bytes": N} alone, N an integer from 0 to 268435456'


@pytest.fixture(params=["python", "go", "js"])
def driver_argv(request: pytest.FixtureRequest) -> list[str]:
    """The command of each implementation of the driver's end: serve(), the Go and the JavaScript references."""
    if request.param == "python":
        return [sys.executable, "-m", "conformance.protocol", "conformance.adapters.memory:MemoryDriver"]
    return shlex.split(request.getfixturevalue(f"{request.param}_driver"))


def _talk(argv: list[str], stream: bytes) -> tuple[int, list[dict[str, Any] | bytes]]:
    """Feed a driver a whole stream; its exit status and what it wrote: answers, each frame as the bytes after it."""
    done = subprocess.run(argv, input=stream, capture_output=True, timeout=120)
    out, found = done.stdout, []
    while out:
        line, _, out = out.partition(b"\n")
        found.append(json.loads(line))
        size = wire.frame_size(found[-1].get("result"))
        if size is not None:
            assert out[size : size + 1] == b"\n", out[: size + 1]
            found.append(out[:size])
            out = out[size + 1 :]
    return done.returncode, found


def _write(seq: int, data: Any) -> bytes:
    return wire.dumps({"seq": seq, "op": "write", "path": "a", "pairs": {}, "secrets": [], "data": data})


@pytest.mark.parametrize("frames", [True, False])
def test_each_driver_end_carries_payloads_as_frames_once_agreed_else_as_base64(
    driver_argv: list[str], frames: bool
) -> None:
    payload = b"\n\x00\xffline\n{}" * 1000  # newlines and bytes no text encoding has
    start = START if frames else {k: v for k, v in START.items() if k != "frames"}
    read = {"seq": 3, "op": "read", "path": "a", "pairs": {}, "secrets": []}
    write = {"seq": 2, "op": "write", "path": "a", "pairs": {}, "secrets": []}
    writing = b"".join(wire.framed(write, "data", payload)) if frames else wire.dumps(write, "data", payload)
    status, found = _talk(driver_argv, wire.dumps(start) + writing + wire.dumps(read) + b'{"seq":4,"op":"stop"}\n')
    assert status == 0
    assert found[0]["result"].get("frames") == (1 if frames else None)
    assert found[1]["seq"] == 2 and found[1]["result"]["size"] == len(payload)
    if frames:
        assert found[2:] == [{"seq": 3, "result": {"$bytes": len(payload)}}, payload]
    else:
        assert found[2:] == [{"seq": 3, "result": base64.b64encode(payload).decode()}]


NEXT = wire.dumps({"seq": 3, "op": "stat", "path": "a", "pairs": {}, "secrets": []})  # never answered


@pytest.mark.parametrize(
    ("stream", "says"),
    [  # a request follows each bad frame but the short one (it would fill it): the driver is gone by then
        (_write(2, {"$bytes": -1}) + NEXT, BAD_MARKER),
        (_write(2, {"$bytes": 268435457}) + NEXT, BAD_MARKER),  # beyond the protocol's cap
        (_write(2, {"$bytes": "3"}) + NEXT, BAD_MARKER),
        (_write(2, {"$bytes": 3, "base64": "AAAA"}) + NEXT, BAD_MARKER),
        (_write(2, {"$bytes": 10}) + b"abc", "malformed frame: the input ended 3 bytes into a 10-byte frame"),
        (_write(2, {"$bytes": 3}) + b"abcX\n" + NEXT, GARBAGE_AFTER),
    ],
    ids=["negative", "too-large", "not-a-number", "not-alone", "short", "garbage-after"],
)
def test_each_driver_end_refuses_a_malformed_frame_in_one_line_and_exits_2(
    driver_argv: list[str], stream: bytes, says: str
) -> None:
    """The stream is out of step after a bad frame: the driver refuses the request and exits with status 2."""
    status, found = _talk(driver_argv, wire.dumps(START) + stream)
    assert (status, found[1:]) == (2, [{"seq": 2, "error": {"class": "ProtocolError", "message": says}}])


def test_each_driver_end_refuses_a_frame_the_start_did_not_agree_on(driver_argv: list[str]) -> None:
    start = {k: v for k, v in START.items() if k != "frames"}
    status, found = _talk(driver_argv, wire.dumps(start) + _write(2, {"$bytes": 1}) + b"a\n" + NEXT)
    refused = {"class": "ProtocolError", "message": "malformed frame: a frame, but the start agreed on base64 payloads"}
    assert (status, found[1:]) == (2, [{"seq": 2, "error": refused}])


# --- the client ---------------------------------------------------------------------------------


def test_a_crashed_process_fails_its_call_and_the_next_call_restarts_it(tmp_path: Path) -> None:
    driver = exec_driver(HOSTILE.removeprefix("exec:"))(misbehave="crash", marker=str(tmp_path / "m"), after="1")
    driver.write("a", b"x")
    with pytest.raises(ProcessFailure, match="exited with status 70; its stderr ends with: hostile driver: crash"):
        driver.read("a")
    assert driver.write("b", b"y").size == 1 and driver.read("b") == b"y"  # a fresh process: memory starts empty
    with pytest.raises(errors.ObjectNotExist):
        driver.read("a")
    driver.close()


@pytest.mark.parametrize(
    ("misbehave", "says"),
    [
        ("frame-negative", 'wrote what is not a protocol line: a frame\'s marker must be {"$bytes": N} alone'),
        ("frame-huge", "N an integer from 0 to 268435456"),
        ("frame-short", "the process sent 3 of a 10-byte frame, then exited with status 0"),
        ("frame-garbage", "the process wrote byte 0x47 after a 3-byte frame, not the newline that ends it"),
    ],
)
def test_a_bad_frame_fails_its_call_and_the_next_call_restarts_the_process(
    misbehave: str, says: str, tmp_path: Path
) -> None:
    driver = exec_driver(HOSTILE.removeprefix("exec:"))(misbehave=misbehave, marker=str(tmp_path / "m"), after="1")
    driver.write("a", b"x")
    with pytest.raises(ProcessFailure, match=re.escape(says)) as failed:
        driver.read("a")
    assert len(str(failed.value).splitlines()) == 1
    assert driver.write("b", b"y" * 3).size == 3 and driver.read("b") == b"yyy"  # a fresh process, framed again
    driver.close()


def test_a_payload_beyond_the_frame_cap_goes_as_base64_and_a_frame_beyond_it_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the harness's cap at 4 bytes: a 10-byte write goes as base64, the driver's 10-byte frame is refused."""
    sent: list[bytes] = []
    exchange = Channel.exchange

    def recorded(self: Channel, parts: list[bytes], timeout: float) -> bytes:
        sent.append(parts[0])
        return exchange(self, parts, timeout)

    monkeypatch.setattr(Channel, "exchange", recorded)
    monkeypatch.setattr(wire, "MAX_FRAME", 4)
    driver = exec_driver(PYTHON_MEMORY.removeprefix("exec:"))()
    assert driver.write("a", b"x" * 10).size == 10 and driver.write("b", b"x" * 4).size == 4
    assert json.loads(sent[1])["data"] == "eHh4eHh4eHh4eA==" and json.loads(sent[2])["data"] == {"$bytes": 4}
    assert driver.read("b") == b"xxxx"
    with pytest.raises(ProcessFailure, match="a frame's marker must be .* from 0 to 4"):
        driver.read("a")
    driver.close()


def test_a_frame_from_a_driver_that_declined_frames_breaks_the_protocol(tmp_path: Path) -> None:
    declining = exec_driver(f"{HOSTILE.removeprefix('exec:')} --base64")
    driver = declining(misbehave="frame-garbage", marker=str(tmp_path / "m"), after="1")
    driver.write("a", b"x")
    with pytest.raises(ProcessFailure, match="a frame, but the start agreed on base64 payloads"):
        driver.read("a")
    driver.close()


def test_an_unknown_command_and_an_unknown_version_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="cannot run 'no-such-driver-cmd': not found on PATH"):
        exec_driver("no-such-driver-cmd --flag")
    with pytest.raises(DriverError, match="speaks protocol version 99; this harness speaks 1"):
        exec_driver(f"{sys.executable} {DRIVERS / 'wrong_version.py'}")()
    with pytest.raises(DriverError, match="the driver accepts frames 2; this harness speaks frames 1"):
        exec_driver(f"{sys.executable} {DRIVERS / 'wrong_version.py'} --frames")()
    for target in ("exec:no-such-driver-cmd", f"exec:{sys.executable} {DRIVERS / 'wrong_version.py'}"):
        done = gspc("run", "--target", target, "--spec", "delete", "--out", "out", cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stdout + done.stderr


@pytest.mark.skipif(importlib.util.find_spec("moto") is None, reason="needs gsp-conformance[s3]")
def test_an_exec_driver_on_moto_in_process_is_refused_in_one_line(tmp_path: Path) -> None:
    """moto's mock lives in the harness's interpreter: another process cannot reach it, so the run is refused."""
    target = f"exec:{sys.executable} -m conformance.protocol conformance.adapters.s3:S3Driver@moto"
    for command in ("run", "certify"):
        args = ["--target", target, "--spec", "delete"] if command == "run" else [target]
        done = gspc(command, *args, "--out", "out", cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert (done.stdout + done.stderr).strip().splitlines() == [
            f"gspc: target {target}: @moto lives inside the harness's process, which a driver in another process "
            "cannot reach; use @moto-server"
        ]
        assert not (tmp_path / "out" / "records.jsonl").exists()


def test_a_backend_name_gives_an_exec_driver_its_service() -> None:
    assert exec_driver("true", "moto-server").service == "s3"
    assert exec_driver("true", "emulator").service == "dropbox"
    assert exec_driver("true", "/tmp").service == "dir"
    assert exec_driver("true", "moto-server", {"service": "custom"}).service == "custom"
    assert exec_driver("true").service is None
    with pytest.raises(DriverError, match="no service has a backend 'nowhere'"):
        exec_driver("true", "nowhere")


# --- whole runs ---------------------------------------------------------------------------------


def test_memory_over_the_protocol_gives_the_records_of_memory_in_process(tmp_path: Path) -> None:
    """Every case of every spec has the same outcome and failed clauses in-process and over stdio, framed or base64."""
    targets = ["memory", PYTHON_MEMORY, BASE64]
    done = gspc("run", *(a for t in targets for a in ("--target", t)), "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = records(tmp_path / "out")
    assert _cases(found, PYTHON_MEMORY) == _cases(found, BASE64) == _cases(found, "memory") != {}


@pytest.mark.skipif(importlib.util.find_spec("moto") is None, reason="needs gsp-conformance[s3]")
def test_an_exec_driver_on_a_backend_gets_its_endpoint_and_the_fault_proxy(tmp_path: Path) -> None:
    """The S3 driver over stdio on moto's server: the endpoint arrives in the start, the faults reach it."""
    exec_s3 = f"exec:{sys.executable} -m conformance.protocol conformance.adapters.s3:S3Driver@moto-server"
    done = gspc("run", "--spec", "errors", "--target", "s3@moto-server", "--target", exec_s3, "--out", "out",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = records(tmp_path / "out")
    assert _cases(found, exec_s3) == _cases(found, "s3@moto-server")
    faulted = [r for r in found if r["target"] == exec_s3 and any("fault" in step for step in r["steps"])]
    assert faulted and {r["outcome"] for r in faulted} <= {"passed", "observed"}


@pytest.mark.parametrize("language", ["go", "js"])
def test_reference_driver_is_certified_conformant_on_every_spec(
    language: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    command = request.getfixturevalue(f"{language}_driver")
    done = gspc("certify", f"exec:{command}", "--out", "cert", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text(encoding="utf-8"))
    specs = {path.stem for path in bundled_specs_dir().glob("*.yaml")}
    assert cert["verdict"] == "conformant"
    assert {v["spec"]: v["verdict"] for v in cert["verdicts"]} == dict.fromkeys(specs, "conformant")


def test_broken_reference_drivers_fail_exactly_their_clauses(go_driver: str, js_driver: str, tmp_path: Path) -> None:
    """Go's delete of a never-written path fails; JavaScript's ranged read throws a raw TypeError."""
    go, js = f"exec:{go_driver} -broken=delete-missing", f"exec:{js_driver} --broken=untyped-read"
    done = gspc("run", "--target", go, "--target", js, "--spec", "delete", "--spec", "errors", "--out", "out",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert _failed(records(tmp_path / "out")) == {
        go: {"delete.missing-ok", "delete.missing-parent-ok"},
        js: {"errors.range-honoured", "errors.taxonomy"},
    }


@pytest.mark.parametrize(
    ("misbehave", "says"),
    [
        ("crash", "the process exited with status 70"),
        ("hang", "the process gave no answer within 1 s"),
        ("garbage", "the process wrote what is not a protocol line: not a JSON line"),
        ("frame-garbage", "the process wrote byte 0x47 after a 3-byte frame, not the newline that ends it"),
    ],
)
def test_a_hostile_process_fails_only_its_case_and_the_run_completes(misbehave: str, says: str, tmp_path: Path) -> None:
    """One read crashes, hangs or writes garbage: that case fails with the process's stderr, secrets masked."""
    secret = "hushhush-secret-42"
    options = {"misbehave": misbehave, "marker": str(tmp_path / "marker"), "token": secret, "request_timeout": "1"}
    args = ["run", "--target", "memory", "--target", HOSTILE, "--spec", "delete", "--spec", "errors", "--out", "out"]
    args += [arg for name, value in options.items() for arg in ("--option", f"{HOSTILE}:{name}={value}")]
    done = gspc(*args, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    found = records(tmp_path / "out")
    assert _cases(found, HOSTILE).keys() == _cases(found, "memory").keys()  # every case has its record
    failed = [r for r in found if r["outcome"] != "passed" and r["outcome"] in ("failed", "error", "not-run")]
    assert [(r["target"], r["outcome"]) for r in failed] == [(HOSTILE, "failed")]
    actual = failed[0]["failure"]["actual"]
    assert says in actual and f"hostile driver: {misbehave} on purpose, token ***" in actual
    assert secret not in done.stdout + done.stderr and not list(_files_with(tmp_path / "out", secret))


def _files_with(folder: Path, text: str) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and text.encode() in path.read_bytes():
            yield path
