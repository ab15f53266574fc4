"""On a shared bucket a run touches only its own keys, even with failing cases and a killed worker.

The bucket is moto's server standing in for a real endpoint (``s3@http://...``), reached through
the standard AWS credential chain with planted credentials that must appear in no output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from conftest import TESTS, gspc, records
from moto.server import ThreadedMotoServer

PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAPLANTEDKEY7Q3X9Z",
    "AWS_SECRET_ACCESS_KEY": "planted/secret+Kx81hQvT0aNnW2zLmYc5",
    "AWS_SESSION_TOKEN": "planted-session-token-5d0c7e2a91b4",
}
FOREIGN = {
    "other-team/data.bin": b"theirs",
    "gspc/not-a-run.txt": b"inside the key prefix, outside every run",
    "gspc/gspc-20000101T000000-aaaaaa/old-run.txt": b"another run's leftovers",
    "top.txt": b"at the bucket root",
}


@pytest.fixture(scope="module")
def bucket() -> tuple[str, object]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip
    client.create_bucket(Bucket="shared-bucket")
    for key, body in FOREIGN.items():
        client.put_object(Bucket="shared-bucket", Key=key, Body=body)
    yield f"s3@http://{host}:{port}", client
    server.stop()


def keys(client) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket="shared-bucket").get("Contents", [])
    return {o["Key"]: client.get_object(Bucket="shared-bucket", Key=o["Key"])["Body"].read() for o in listing}


def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return base | PLANTED | {"AWS_DEFAULT_REGION": "us-east-1"}


def test_a_full_run_leaves_foreign_keys_and_no_own_keys(bucket, tmp_path: Path) -> None:
    target, client = bucket
    done = gspc("run", "--target", target, "--option", "bucket=shared-bucket", "--out", "out", cwd=tmp_path,
                env=env())  # fmt: skip
    found = records(tmp_path / "out")
    assert any(r["outcome"] == "failed" for r in found), "moto's SSE-C gaps should fail cases on this target"
    assert done.returncode == 1
    assert keys(client) == FOREIGN
    outputs = [p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()]
    for text in [*outputs, done.stdout + done.stderr]:
        for secret in PLANTED.values():
            assert secret not in text


def test_a_killed_worker_leaves_foreign_keys_and_clean_finishes(bucket, tmp_path: Path) -> None:
    target, client = bucket
    command = [sys.executable, "-m", "conformance", "run", "--target", target, "--option", "bucket=shared-bucket",
               "--out", "out", "-n", "2"]  # fmt: skip
    environ = env() | {"PYTHONPATH": str(TESTS)}
    run = subprocess.Popen(command, cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ledger = tmp_path / "out" / "ledger"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(ledger.glob("*-gw*.jsonl")):
        time.sleep(0.1)
    time.sleep(1.0)  # let the workers create objects
    victim = next(ledger.glob("*-gw0.jsonl"))
    worker_pid = _worker_pid(run.pid)
    os.kill(worker_pid, signal.SIGKILL)
    output = run.communicate(timeout=300)[0].decode(errors="replace")
    assert "crashed" in output, output[-2000:]  # the worker really died mid-run
    assert keys(client).items() >= FOREIGN.items()
    run_id = victim.name.rsplit("-", 1)[0]
    cleaned = gspc("clean", "--run-id", run_id, "--out", "out", cwd=tmp_path, env=env())
    assert cleaned.returncode == 0, cleaned.stderr
    assert keys(client) == FOREIGN


def _worker_pid(cli_pid: int) -> int:
    """The first xdist worker below the CLI's pytest child."""
    for _ in range(100):
        found = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout.splitlines()
        rows = [line.split(None, 2) for line in found[1:]]
        children = {int(pid): int(ppid) for pid, ppid, *_ in rows}
        below = [pid for pid, ppid in children.items() if children.get(ppid) == cli_pid or ppid == cli_pid]
        workers = [pid for pid in below if children.get(pid) != cli_pid]
        if workers:
            return min(workers)
        time.sleep(0.1)
    raise AssertionError("no xdist worker found")
