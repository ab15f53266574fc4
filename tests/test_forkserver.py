"""Workers forked from the fork server: through execnet as xdist starts them, and in whole runs."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import execnet
import pytest
from conftest import gspc, records

from conformance.forkserver import BOOTSTRAP, ForkServer, fork_server_works
from conformance.spec.limits import DEFAULT_LIMITS
from conformance.spec.loader import load_spec, spec_files

pytestmark = pytest.mark.skipif(not fork_server_works(), reason="the fork server needs Linux 5.3 or later")

PARENT = "import os; channel.send((os.getpid(), os.getppid(), sorted(__import__('sys').modules)))"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "spinning.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    )
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(3)\n")
    (tmp_path / "marked.py").write_text("import atexit, pathlib\natexit.register(pathlib.Path('exited').touch)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(tmp_path)
    started = ForkServer()
    yield started
    started.close()


def _gateway(server: ForkServer) -> execnet.Gateway:
    return execnet.makegateway(f"execmodel=main_thread_only//popen//python={server.python}")


def test_a_worker_is_forked_with_what_was_preloaded(server: ForkServer) -> None:
    server.finish_preload(["json", "marked"], [], DEFAULT_LIMITS)
    gateway = _gateway(server)
    pid, parent, modules = gateway.remote_exec(PARENT).receive()
    gateway.exit()
    assert parent == server.process.pid  # the server's child, not the launcher's
    assert {"json", "marked"} <= set(modules)
    assert gateway._io.wait() == 0
    assert Path("exited").exists()  # the worker ran its atexit handlers as it ended


def test_a_worker_finds_the_run_s_specs_parsed(server: ForkServer) -> None:
    spec = spec_files()[0]
    name = load_spec(spec).name  # it passed its schema here, so the server need not check it again
    server.finish_preload([], [spec], DEFAULT_LIMITS)
    gateway = _gateway(server)
    check = (
        "import sys, conformance.spec.loader as loader; from pathlib import Path\n"
        "loader._parse_spec = None  # parsing again would fail\n"
        f"channel.send((loader.load_spec(Path({str(spec)!r})).name, 'jsonschema' in sys.modules))"
    )
    assert tuple(gateway.remote_exec(check).receive()) == (name, False)
    gateway.exit()


def test_the_server_is_ready_once_it_has_imported_the_last_list(server: ForkServer) -> None:
    server.preload(["json"])
    assert not server.ready(0.5)  # more may follow
    server.finish_preload(["slow"], [], DEFAULT_LIMITS)
    assert not server.ready(0.5)  # still importing: the controller would start plain workers
    assert server.ready(10)


def test_a_server_that_never_became_ready_is_killed_at_close(server: ForkServer) -> None:
    server.finish_preload(["slow"], [], DEFAULT_LIMITS)
    assert not server.ready(0.2)
    server.close()
    assert server.process.returncode == -signal.SIGKILL  # not waited for while it sleeps in an import


def test_a_server_with_a_thread_running_does_not_fork(server: ForkServer) -> None:
    server.finish_preload(["spinning"], [], DEFAULT_LIMITS)
    gateway = _gateway(server)
    pid, parent, modules = gateway.remote_exec(PARENT).receive()
    gateway.exit()
    assert parent == os.getpid()  # the launcher became the plain worker
    assert "spinning" not in modules
    assert gateway._io.wait() == 0


def test_a_closed_server_leaves_the_launcher_to_run_the_worker(server: ForkServer) -> None:
    server.close()
    gateway = _gateway(server)
    _, parent, _ = gateway.remote_exec(PARENT).receive()
    gateway.exit()
    assert parent == os.getpid()


def _launch(server: ForkServer, source: str, **popen: object) -> subprocess.Popen:
    """A launcher started as execnet starts a worker's python, given ``source`` as its bootstrap line."""
    command = [*shlex.split(server.python), "-u", "-c", BOOTSTRAP]
    launcher = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, **popen)
    launcher.stdin.write(repr(source).encode() + b"\n")
    launcher.stdin.flush()
    return launcher


SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists(), reason="needs root and a python others may run")
def test_a_launcher_of_another_user_is_not_forked_for(server: ForkServer) -> None:
    server.finish_preload(["json"], [], DEFAULT_LIMITS)
    _, *launch = shlex.split(server.python)  # the launcher as this user's python would run it, by the system's
    launcher = subprocess.Popen(
        [str(SYSTEM_PYTHON), *launch, "-u", "-c", BOOTSTRAP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        user=65534,  # nobody: the server answers that it will not fork, and the launcher runs the worker itself
        cwd="/",
    )
    out, _ = launcher.communicate(repr("import os; print(os.getppid(), os.getuid())").encode() + b"\n", timeout=30)
    assert out.split() == [str(os.getpid()).encode(), b"65534"]


def test_the_worker_exit_code_reaches_the_launcher(server: ForkServer) -> None:
    server.finish_preload([], [], DEFAULT_LIMITS)
    launcher = _launch(server, f"import os, sys; sys.exit(os.getppid() == {server.process.pid} and 7)")
    launcher.communicate()
    assert launcher.returncode == 7


def test_a_forked_worker_has_the_launcher_s_directory_and_environment(server: ForkServer, tmp_path: Path) -> None:
    server.finish_preload([], [], DEFAULT_LIMITS)
    elsewhere = tmp_path / "elsewhere"  # the server runs in tmp_path
    elsewhere.mkdir()
    env = {"PATH": os.environ["PATH"], "GSPC_SEEN_BY_THE_WORKER": "yes"}  # and none of the server's
    source = "import os; print(os.getppid(), os.getcwd(), sorted(os.environ))"
    out, _ = _launch(server, source, env=env, cwd=elsewhere).communicate()
    parent, cwd, names = out.decode().split(" ", 2)
    assert int(parent) == server.process.pid and cwd == str(elsewhere)  # forked, in the launcher's directory
    assert "GSPC_SEEN_BY_THE_WORKER" in names and "PYTHONPATH" not in names


def test_killing_the_launcher_kills_its_worker(server: ForkServer) -> None:
    server.finish_preload([], [], DEFAULT_LIMITS)
    launcher = _launch(server, "import os, time; print(os.getpid(), flush=True); time.sleep(60)")
    worker = int(launcher.stdout.readline())
    assert worker != launcher.pid
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    assert _gone(worker)


def test_closing_the_server_ends_its_workers(server: ForkServer) -> None:
    server.finish_preload([], [], DEFAULT_LIMITS)
    launcher = _launch(server, "import os, time; print(os.getpid(), flush=True); time.sleep(60)")
    worker = int(launcher.stdout.readline())
    server.close()
    assert _gone(worker)
    assert launcher.wait(5) != 0  # the launcher learns its worker was killed


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_a_distributed_run_forks_its_workers_and_judges_alike(tmp_path: Path) -> None:
    serial = gspc("run", "--driver", "forked_drivers:ParentNoting", "--out", "serial", cwd=tmp_path)
    done = gspc("run", "--driver", "forked_drivers:ParentNoting", "-n", "2", "--out", "forked", cwd=tmp_path)
    assert done.returncode == serial.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    parents = [path.read_text() for path in (tmp_path / "parents").iterdir()]
    forked = [p for p in parents if "conformance.forkserver" in p]
    assert len(forked) == 2, parents  # both workers; the serial run and the controller's preflight are not
    assert "cannot be rewritten" not in done.stdout + done.stderr  # pytest saw no plugin imported early

    def outcomes(out: str) -> dict[str, str]:
        return {r["nodeid"]: r["outcome"] for r in records(tmp_path / out)}

    assert outcomes("forked") == outcomes("serial")
