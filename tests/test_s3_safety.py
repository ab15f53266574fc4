"""On a shared bucket a run touches only its own keys, even with failing cases and a killed worker.

The bucket is moto's server standing in for a real endpoint (``s3@http://...``), reached through
the standard AWS credential chain with planted credentials that must appear in no output.
"""

from __future__ import annotations

import json
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
    victim = _running_worker(tmp_path / "out" / "records" / "gw0.jsonl")
    os.kill(victim, signal.SIGKILL)
    output = run.communicate(timeout=300)[0].decode(errors="replace")
    assert run.returncode == 1, output[-2000:]  # moto's SSE-C gaps: non-conformant, killed worker or not
    found = records(tmp_path / "out")
    collected = [line for path in (tmp_path / "out" / "manifest").glob("*.jsonl") for line in path.open()]
    assert len(found) == len({json.loads(line)["nodeid"] for line in collected})  # every case has its record
    killed = [r for r in found if r["outcome"] == "error"]
    assert all("killed from outside" in r["reason"] for r in killed)  # never blamed on the driver
    assert keys(client).items() >= FOREIGN.items()
    cleaned = gspc("clean", "--run-id", found[0]["run_id"], "--out", "out", cwd=tmp_path, env=env())
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert keys(client) == FOREIGN


def _running_worker(path: Path) -> int:
    """The pid of the xdist worker writing ``path``, as soon as it has started a case."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.endswith("}") and '"outcome": "running"' in line:
                    return json.loads(line)["pid"]
        time.sleep(0.01)
    raise AssertionError(f"no case started in {path}")
