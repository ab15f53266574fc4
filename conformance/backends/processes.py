"""A child process serving HTTP on 127.0.0.1: it prints its port, and stops when its stdin closes.

Servers run in a child process (a blocking client must never starve a server thread of the GIL)
bound to 127.0.0.1 on an ephemeral port. A child exits when its stdin closes, so it cannot
outlive the harness even if the harness is killed.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import subprocess
import tempfile
import time

from conformance.backends import BackendError

START_TIMEOUT = 30.0


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


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a server child: this one minus AWS credentials it has no use for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env | extra
