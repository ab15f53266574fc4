"""Backends: the registry, endpoints, one backend per run shared by every worker, any S3 driver with faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import TESTS, records

from conformance import backends, errors
from conformance.backends import BackendError, Endpoint
from conformance.driver import DriverError
from conformance.spec.loader import spec_files
from conformance.targets import SharedBackends, Target, open_target, read_endpoints

BUNDLED = ["memory", "fs", "s3@moto", "s3@moto-server", "s3@ministack", "dropbox@emulator"]
THIRD_PARTY = "third_party_s3:MinimalS3"


def test_the_registry_holds_every_bundled_backend_by_service_and_name() -> None:
    keys = set(backends.registered())
    assert {"s3.moto", "s3.moto-server", "s3.ministack", "s3.remote", "dropbox.emulator", "dropbox.live"} <= keys
    assert {"dir.tmp", "dir.local"} <= keys
    assert backends.known("dropbox") == ["emulator", "live"]
    assert backends.find("s3", "https://s3.example.com")[1] == "https://s3.example.com"
    assert backends.find("s3", "https://s3.example.com")[0] is backends.load("s3.remote")
    assert backends.find("dir", "/data") == (backends.load("dir.local"), "/data")
    assert backends.find("dir", None)[0] is backends.load("dir.tmp")  # `fs` alone: a temporary directory
    assert backends.find("dropbox", None)[0] is backends.load("dropbox.emulator")
    assert backends.find("s3", "nope") is None
    with pytest.raises(BackendError, match="no backend 'x.y'"):
        backends.load("x.y")


def test_the_core_imports_no_sdk() -> None:
    code = "import sys, conformance.targets, conformance.backends.s3, conformance.backends.dropbox; "
    code += "print(sorted(m for m in ('boto3', 'botocore', 'moto', 'dropbox', 'trustme') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_endpoint_travels_as_json_but_a_simulated_injector_does_not() -> None:
    endpoint = Endpoint(
        options={"bucket": "b"},
        upstream=("127.0.0.1", 9),
        address={"endpoint_url": "http://{address}"},
        list_page_size=7,
    )
    assert Endpoint.from_json(json.loads(json.dumps(endpoint.to_json()))) == endpoint
    with pytest.raises(BackendError):
        Endpoint(faults=object()).to_json()  # type: ignore[arg-type]


def test_shared_endpoints_bind_each_process_with_a_proxy_of_its_own(tmp_path: Path) -> None:
    shared = SharedBackends()
    shared.start_in_background([Target("s3", "moto-server"), Target("s3", "moto"), Target("fs")])
    shared.write_to(tmp_path / "endpoints.json")
    try:
        endpoints = read_endpoints(tmp_path / "endpoints.json")  # once the backends are up
        assert set(endpoints) == set(shared.endpoints) == {"s3@moto-server", "fs"}  # in-process moto: each its own
        assert (tmp_path / "endpoints.json").stat().st_mode & 0o077 == 0
        endpoint = endpoints["s3@moto-server"]
        one, two = (open_target(Target("s3", "moto-server"), endpoint) for _ in range(2))
        try:
            assert one.faults.port != two.faults.port and one.faults.upstream == two.faults.upstream
            one.faults.inject("status", status=503, code="SlowDown")
            two.driver.write("shared/k", b"v")  # a fault in front of one never reaches the other
            with pytest.raises(errors.RequestThrottled):
                one.driver.read("shared/k")
            one.faults.clear()
            assert one.driver.read("shared/k") == b"v"  # one server behind both
        finally:
            one.close()
            two.close()
        assert read_endpoints(tmp_path / "endpoints.json")["fs"].options["root"]
    finally:
        shared.close()


def test_a_child_reading_endpoints_still_starting_waits_for_them_or_for_why_they_failed(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    shared = SharedBackends()
    shared.start_in_background([Target("fs")])
    shared.write_to(path)
    try:
        assert read_endpoints(path)["fs"].options["root"]  # waited, however the thread and this one raced
        assert path.stat().st_mode & 0o077 == 0
    finally:
        shared.close()
    late = SharedBackends()  # the run named the file only after its backends were up: written at once
    late.start_in_background([Target("fs")])
    while late.starting:
        time.sleep(0.01)
    late.write_to(tmp_path / "late.json")
    try:
        assert json.loads((tmp_path / "late.json").read_text())["endpoints"]["fs"]["options"]["root"]
    finally:
        late.close()
    path.write_text(json.dumps({"pending": True}))
    started = time.monotonic()
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"error": "target x: cannot start"}))
    threading.Timer(0.3, os.replace, (failed, path)).start()  # at once, as SharedBackends writes it
    with pytest.raises(DriverError, match="^target x: cannot start$"):
        read_endpoints(path)
    assert time.monotonic() - started >= 0.3
    for foreign in ({"s3@moto-server": {}}, 5, ["pending"]):  # not what SharedBackends writes
        path.write_text(json.dumps(foreign))
        with pytest.raises(DriverError, match="not what SharedBackends writes"):
            read_endpoints(path)


@pytest.mark.parametrize("workers", [None, "2"])
def test_backends_slower_to_start_than_the_timeout_are_waited_for(tmp_path: Path, workers: str | None) -> None:
    env = dict(os.environ, GSPC_TEST_START_SECONDS="4")
    args = ["--target", "starting_backends:SlowMemory@sleepy", "--spec", "delete", "--timeout", "1"]
    done = _run(*args, *(["-n", workers] if workers else []), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "watchdog" not in done.stdout + done.stderr
    found = records(tmp_path / "out")
    assert found and all(r["outcome"] in ("passed", "not-applicable") for r in found)


@pytest.mark.parametrize("workers", [None, "2"])
def test_a_backend_that_fails_to_start_stops_the_run_in_one_line(tmp_path: Path, workers: str | None) -> None:
    env = dict(os.environ, GSPC_TEST_TOKEN="tok-" + "s3cr3t" * 4)
    args = ["--target", "starting_backends:SlowMemory@failing", *(["-n", workers] if workers else [])]
    done = _run(*args, cwd=tmp_path, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    said = [line for line in output.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("gspc: target starting_backends:SlowMemory@failing: "), output
    assert "cannot reach the service with ***" in said[0] and "s3cr3t" not in output
    assert not (tmp_path / "out" / "records.jsonl").exists() and not (tmp_path / "out" / "endpoints.json").exists()


def test_an_emulator_refusing_the_bucket_is_one_line_with_its_answer() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from conformance.backends.s3 import _put_bucket

    class Refuses(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - the name http.server calls
            body = b"<Error>\n  <Code>AccessDenied</Code>\n</Error>"
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(BackendError) as raised:
            _put_bucket("gspc-x", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
    assert str(raised.value) == "cannot create bucket 'gspc-x': HTTP 403: <Error> <Code>AccessDenied</Code> </Error>"
    with pytest.raises(BackendError, match="^cannot create bucket 'gspc-x': ConnectionRefusedError"):
        _put_bucket("gspc-x", server.server_address[1])  # nothing listens there now
    with pytest.raises(BackendError, match="^bucket 'a b/c': a bucket name is 1 to 255 of"):
        _put_bucket("a b/c", server.server_address[1])


def _run(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    from conftest import gspc

    return gspc("run", *args, "--out", "out", cwd=cwd, **kwargs)


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("memory@moto-server", "declares no service"),
        ("s3@nope", "no s3 backend 'nope'"),
        ("fs@relative/dir", "no dir backend 'relative/dir'"),
    ],
)
def test_a_bad_backend_is_one_line_naming_the_target_and_the_known_backends(
    tmp_path: Path, target: str, says: str
) -> None:
    done = _run("--target", target, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if says in line]
    assert len(lines) == 1 and target in lines[0] and "known backends" in lines[0], done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("backend", ["moto-server", "ministack"])
def test_a_third_party_s3_driver_runs_every_spec_with_the_fault_cases(tmp_path: Path, backend: str) -> None:
    target = f"{THIRD_PARTY}@{backend}"
    done = _run("--target", target, "-n", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = records(tmp_path / "out")
    assert {r["spec"] for r in found} == {path.stem for path in spec_files()}
    faulted = [r for r in found if any("fault" in step for step in r["steps"] or ())]
    assert len(faulted) >= 10 and all(r["outcome"] == "passed" for r in faulted)
    assert not [r for r in found if "fault proxy" in (r.get("reason") or "")]
    assert not (tmp_path / "out" / "endpoints.json").exists()  # gone with the backends


def _moto_servers(root: int) -> set[int]:
    """Processes below ``root`` running moto's server."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue

    def below(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == root:
                return True
        return False

    return {pid for pid, cmd in commands.items() if b"ThreadedMotoServer" in cmd and below(pid)}


@pytest.mark.parametrize("front", ["gspc", "pytest"])
def test_an_xdist_run_starts_one_moto_server_for_every_worker(tmp_path: Path, front: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    if front == "gspc":
        argv = [sys.executable, "-m", "conformance", "run", "--target", "s3@moto-server", "-n", "2", "--out", "out"]
    else:
        specs = Path(__file__).resolve().parent.parent / "specs"
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "-c", os.devnull]
        argv += ["--rootdir", str(specs), "--gspc-target", "s3@moto-server", "--gspc-out", "out"]
        argv += [str(p) for p in sorted(specs.glob("*.yaml"))]
    child = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: set[int] = set()
    while child.poll() is None:
        seen |= _moto_servers(child.pid)
        time.sleep(0.05)
    output = child.stdout.read().decode(errors="replace")
    assert child.returncode == 0, output[-3000:]
    assert len(seen) == 1, seen
    workers = Counter(r["worker"] for r in records(tmp_path / "out"))
    assert set(workers) == {"gw0", "gw1"}  # both workers ran cases, on that one server


def test_every_bundled_target_gives_the_recorded_outcome_and_clause_of_each_case(tmp_path: Path) -> None:
    baseline = json.loads((TESTS / "data" / "baseline-records.json").read_text(encoding="utf-8"))
    args = [arg for target in BUNDLED for arg in ("--target", target)]
    done = _run(*args, "-n", "2", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    now = {r["nodeid"]: [r["outcome"], r["clause"]] for r in records(tmp_path / "out")}
    assert now == baseline


def test_a_run_wide_latency_slows_every_proxied_request(tmp_path: Path) -> None:
    from conftest import gspc

    done = gspc("run", "--target", "s3@moto-server", "--spec", "delete", "--latency", "300ms", "--out", "out",
                "--", "-k", "delete-missing and flat", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    steps = [step for record in records(tmp_path / "out") for step in record["steps"] if "op" in step]
    assert steps and all(step["duration"] >= 0.3 for step in steps)  # each step made at least one request


@pytest.mark.parametrize("backend", ["moto", "moto-server", "ministack"])
def test_every_s3_backend_the_harness_starts_pages_at_its_own_size_whatever_maxkeys_asks(backend: str) -> None:
    sys.path.insert(0, str(TESTS))  # the third-party driver, as the harness finds it
    opened = open_target(Target(THIRD_PARTY, backend))
    try:
        assert opened.list_page_size == backends.LIST_PAGE_SIZE
        s3, bucket = opened.driver.s3, opened.driver.bucket
        for index in range(backends.LIST_PAGE_SIZE + 2):
            opened.driver.write(f"paged/{index}", b"x")
        v2 = s3.list_objects_v2(Bucket=bucket, Prefix="paged/", MaxKeys=1000)
        v1 = s3.list_objects(Bucket=bucket, Prefix="paged/")
        assert (len(v2["Contents"]), v2["IsTruncated"]) == (backends.LIST_PAGE_SIZE, True)
        assert (len(v1["Contents"]), v1["IsTruncated"]) == (backends.LIST_PAGE_SIZE, True)
        assert len(list(opened.driver.list("paged/"))) == backends.LIST_PAGE_SIZE + 2  # it follows the tokens
    finally:
        opened.close()


def test_moto_in_process_gets_its_own_page_back_when_the_target_closes() -> None:
    import boto3
    from moto import mock_aws

    opened = open_target(Target("s3", "moto"))
    opened.close()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        s3.create_bucket(Bucket="after")
        for index in range(backends.LIST_PAGE_SIZE + 2):
            s3.put_object(Bucket="after", Key=f"k{index}", Body=b"x")
        assert s3.list_objects_v2(Bucket="after")["KeyCount"] == backends.LIST_PAGE_SIZE + 2


def test_the_dropbox_emulator_the_harness_starts_pages_at_its_own_size() -> None:
    opened = open_target(Target("dropbox", "emulator"))
    try:
        assert opened.list_page_size == backends.LIST_PAGE_SIZE
        for index in range(backends.LIST_PAGE_SIZE + 2):
            opened.driver.write(f"paged/{index}", b"x")
        dbx = opened.driver._dbx
        page = dbx.files_list_folder(f"{opened.driver.root}/paged", limit=1000)
        assert (len(page.entries), page.has_more) == (backends.LIST_PAGE_SIZE, True)
        assert len(list(opened.driver.list("paged/"))) == backends.LIST_PAGE_SIZE + 2
    finally:
        opened.close()
