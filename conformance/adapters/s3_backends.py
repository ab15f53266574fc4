"""Embedded S3 backends for the s3 driver: moto in-process, moto's server and ministack as subprocesses.

Servers run in a child process (a blocking client must never starve a server thread of the GIL)
bound to 127.0.0.1 on an ephemeral port. A child exits when its stdin closes, so it cannot
outlive the harness even if the harness is killed.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Credentials the emulators accept; not secrets, and never the user's own.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "gspc-emulator", "aws_secret_access_key": "gspc-emulator"}
#: Where to find a Python that has ministack installed, when it is not this one.
MINISTACK_PYTHON_ENV = "GSPC_MINISTACK_PYTHON"
START_TIMEOUT = 30.0

_MOTO_CHILD = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.buffer.read()
server.stop()
"""

_MINISTACK_CHILD = """
import asyncio, os, socket, sys, threading
listener = socket.create_server(("127.0.0.1", 0), backlog=128)
os.environ["GATEWAY_PORT"] = str(listener.getsockname()[1])
from hypercorn.asyncio import serve
from hypercorn.config import Config
from ministack.app import app
config = Config()
config.bind = [f"fd://{listener.fileno()}"]
config.loglevel = "WARNING"
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
print(listener.getsockname()[1], flush=True)
asyncio.run(serve(app, config))
"""


class BackendError(Exception):
    """An embedded backend failed to start; the message says why, in one line."""


def bucket_name() -> str:
    """A fresh bucket name, so backends sharing one moto state never collide."""
    return f"gspc-{secrets.token_hex(4)}"


def emulator_session(region: str) -> Any:
    """A boto3 session holding the emulators' dummy credentials (never the user's chain)."""
    import boto3

    return boto3.Session(region_name=region, **EMULATOR_CREDENTIALS)


class InProcessMoto:
    """moto's mock_aws, started for the life of one driver (nested starts share one state)."""

    def __init__(self) -> None:
        from moto import mock_aws

        # Keep the process environment and boto3's default session untouched.
        self._mock = mock_aws(config={"core": {"mock_credentials": False, "reset_boto3_session": False}})
        self._mock.start()

    def close(self) -> None:
        self._mock.stop()


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1; it prints its port, and stops when stdin closes."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], health: str = "/") -> None:
        self.name = name
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,  # a Ctrl-C of the harness reaches it only through close()
        )
        try:
            self.port = self._read_port()
            self._wait_ready(health)
        except BaseException:
            self.close()
            raise
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def _read_port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if select.select([self._proc.stdout], [], [], 0.1)[0]:
                line = self._proc.stdout.readline()
                if line.strip().isdigit():
                    return int(line)
                raise BackendError(f"{self.name} did not start: {self._tail() or 'no port printed'}")
            if self._proc.poll() is not None:
                raise BackendError(f"{self.name} exited with {self._proc.returncode}: {self._tail()}")
        raise BackendError(f"{self.name} printed no port within {START_TIMEOUT:g} s")

    def _wait_ready(self, health: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BackendError(f"{self.name} exited with {self._proc.returncode}: {self._tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", health)
                if conn.getresponse().status < 500:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.05)
        raise BackendError(f"{self.name} not ready within {START_TIMEOUT:g} s")

    def _tail(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:300] if lines else ""

    def close(self) -> None:
        """Close stdin (the child's signal to stop), then terminate and kill if it lingers."""
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=3)
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._log.close()


def moto_server() -> ServerProcess:
    """moto's HTTP server in a child process of this interpreter."""
    return ServerProcess("moto-server", [sys.executable, "-c", _MOTO_CHILD], _child_env(), "/moto-api/")


class MinistackServer(ServerProcess):
    """ministack (S3 only) in a child process of the Python that has it installed."""

    def __init__(self, python: str) -> None:
        self._data = tempfile.mkdtemp(prefix="gspc-ministack-")
        env = _child_env() | {
            "SERVICES": "s3",
            "LOG_LEVEL": "WARNING",
            "S3_PERSIST": "0",
            "S3_DATA_DIR": self._data,
            "TMPDIR": self._data,
            "BIND_HOST": "127.0.0.1",
        }
        env.pop("LOCALSTACK_PERSISTENCE", None)
        try:
            super().__init__("ministack", [python, "-c", _MINISTACK_CHILD], env, "/_ministack/health")
        except BaseException:
            shutil.rmtree(self._data, ignore_errors=True)
            raise

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._data, ignore_errors=True)


def ministack_python(explicit: str | None = None) -> str | None:
    """A Python interpreter that can import ministack: explicit, $GSPC_MINISTACK_PYTHON, this one, or PATH."""
    for candidate in (explicit, os.environ.get(MINISTACK_PYTHON_ENV)):
        if candidate:
            return candidate if Path(candidate).exists() else None
    if importlib.util.find_spec("ministack") is not None:
        return sys.executable
    script = shutil.which("ministack")
    if script:
        # A console script's first line names the interpreter of the venv that installed it.
        with contextlib.suppress(OSError, UnicodeDecodeError), open(script, encoding="utf-8") as handle:
            first = handle.readline()
            if first.startswith("#!") and Path(first[2:].strip()).exists():
                return first[2:].strip()
    return None


def _child_env() -> dict[str, str]:
    """The environment for an emulator child: this one minus AWS credentials it has no use for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env
