"""xdist workers forked from a warmed-up process, so that each does not import pytest, the harness and an SDK.

A plain xdist worker is a fresh ``python -u -c BOOTSTRAP`` that imports pytest, execnet, the harness and the
driver's SDK (boto3: 0.3 s of CPU) before its first case; four of them on two cores take about a second of a run.
Instead the controller starts one server, which imports what the controller imports (the SDK as the controller's
preflight imports it) and parses the run's spec files, and gives xdist a launcher (``forkserver_launcher.py``) as
the workers' ``python``. The launcher hands its stdin, stdout and stderr, its directory and its environment to the
server, which forks a child that becomes the worker with them. The launcher runs the plain worker itself when the
server cannot fork: it has gone, or a thread runs in it (forking is not safe then). The server leaves out the
packages pytest rewrites (plugins loaded with ``-p``, conftest files), so a worker's pytest imports those as it
always does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from conformance.spec.limits import SpecLimits

PLAIN = b"plain\n"  # the server's answer when the launcher should run the worker itself
BOOTSTRAP = "import sys;exec(eval(sys.stdin.readline()))"  # execnet's popen_bootstrapline
READY_WAIT = 10.0  # seconds the controller waits for the server's imports before it starts plain workers
_REAL_EXIT = os._exit  # the plugin wraps os._exit in a worker, to blame a driver that calls it during a case


class ForkServer:
    """The controller's handle on its fork server: the launcher command to give xdist, and the preload."""

    def __init__(self) -> None:
        # an abstract socket: nothing on disk to leave behind when the run is killed; the server forks only for
        # a launcher of this user (the peer's credentials), and the name cannot be guessed
        self.name = f"gspc-workers-{secrets.token_hex(16)}"
        self._named: set[str] = set()  # modules named to the server so far
        self._ready: bool | None = None  # what ready() found: False, and no launcher was given it
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(f"\0{self.name}")
            listener.listen(64)  # a launcher's connection waits here until the server is ready for it
            code = "from conformance.forkserver import serve; serve()"
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, str(listener.fileno())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,  # says "ready"; it holds none of the run's output pipes
                stderr=subprocess.DEVNULL,
                pass_fds=(listener.fileno(),),
            )

    @property
    def python(self) -> str:
        """What an xdist spec's ``python`` becomes: the launcher, for this server."""
        return f"{sys.executable} -I -S {os.path.join(os.path.dirname(__file__), 'forkserver_launcher.py')} {self.name}"

    def preload(self, modules: list[str]) -> None:
        """Have the server import these modules."""
        new = self._new(modules)
        if new:
            self._send({"modules": new})

    def finish_preload(self, modules: list[str], specs: list[Path], limits: SpecLimits) -> None:
        """The last preload: these modules, then the run's spec files parsed; the server forks workers after it.

        The files that passed their schema in this process are trusted there too, so it never imports jsonschema.
        """
        from conformance.spec.loader import schema_checked

        paths, checked = [str(path) for path in specs], schema_checked()
        last = {"specs": paths, "limits": dataclasses.asdict(limits), "checked": checked, "last": True}
        self._send({"modules": self._new(modules), **last})

    @contextlib.contextmanager
    def following_imports(self) -> Iterator[None]:
        """While in this block, the server imports each module as soon as this process starts importing it.

        The preflight imports the driver's SDK (boto3: 0.2 s of CPU), and the server does too at the same time,
        on the other core, instead of after it.
        """
        teller = _ImportTeller(self)
        sys.meta_path.insert(0, teller)
        try:
            yield
        finally:
            sys.meta_path.remove(teller)

    def ready(self, within: float = READY_WAIT) -> bool:
        """Whether the server has done the last preload and forks workers (it waits at most ``within`` seconds)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            self._ready = bool(selector.select(within)) and self.process.stdout.readline() == b"ready\n"
        return self._ready

    def close(self) -> None:
        """Stop the server: it kills any child still running (the run is over).

        A server found not ready was given to no launcher, and is killed at once: it may be stuck in an import.
        """
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        if self._ready is False:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:  # a server that does not stop is killed; the run has ended anyway
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def _new(self, modules: list[str]) -> list[str]:
        """The modules not named to the server before (a pipe holds 64 KiB: the server reads between imports)."""
        new = [name for name in modules if name not in self._named]
        self._named.update(new)
        return new

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # the server has gone: the launchers run their workers themselves
            pass


class _ImportTeller:
    """An import finder that finds nothing: it names each module being imported to the fork server."""

    def __init__(self, server: ForkServer) -> None:
        self.server = server

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        self.server.preload([name])


def fork_server_works() -> bool:
    """Whether this system has what the server needs: fork, descriptors passed over a Unix socket, pidfds."""
    if not (hasattr(os, "pidfd_open") and hasattr(socket, "send_fds") and os.path.isdir("/proc/self/task")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))  # the kernel may be older than the call (Linux 5.3)
    except OSError:
        return False
    return True


def preloadable() -> list[str]:
    """The modules this process has imported that a worker may take from the server, in import order.

    Not ``__main__``, and nothing in a top-level package of which pytest rewrote a module (a ``-p`` plugin, a
    conftest): a worker's pytest marks those for rewriting, and warns about any it finds already imported.
    """
    rewritten = _rewritten_packages()
    kept = []
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top not in rewritten and not name.startswith("__") and "conftest" not in name:
            kept.append(name)
    return kept


def _rewritten_packages() -> set[str]:
    """The top-level packages of the modules pytest's assertion rewriter has rewritten in this process."""
    from _pytest.assertion.rewrite import AssertionRewriter, AssertionRewritingHook

    return {
        name.partition(".")[0]
        for name, module in list(sys.modules.items())
        if isinstance(getattr(module, "__loader__", None), AssertionRewritingHook)
        and not AssertionRewriter.is_rewrite_disabled(module.__doc__ or "")
    }


# -- the server ---------------------------------------------------------------------------------------------


def serve() -> None:
    """The fork server's main: ``python -c 'from conformance.forkserver import serve; serve()' FD``.

    It imports what the controller names, says "ready", then forks a worker for each launcher that connects to
    FD (the listening socket the controller made and passed on) until the controller closes its stdin. A forked
    child runs execnet's bootstrap on the launcher's streams and ends there.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the workers and the controller, not this
    listener = socket.socket(fileno=int(sys.argv[1]))
    if not _preload():
        return
    os.write(1, b"ready\n")
    if _loop(listener):  # a forked child: become the worker
        sys.argv[:] = ["-c"]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the streams of the interpreter from now on
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)  # as ``python -u`` writes them
        _end_worker(_worker())


def _worker() -> int:
    """Run execnet's bootstrap as ``python -c`` would; the exit code ``python`` would give."""
    import __main__

    try:
        exec(BOOTSTRAP, vars(__main__))
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - reported as the interpreter would
        import traceback

        traceback.print_exc()
        return 1
    return 0


def _end_worker(code: int) -> None:
    """End a forked worker as a forked ``multiprocessing`` child ends, after running the exit handlers too.

    Threads are joined and ``atexit`` handlers run (``weakref.finalize`` and multiprocessing's own among them);
    the interpreter's teardown of every module is skipped, which took 0.4 s a worker with an SDK loaded.
    """
    import atexit
    import threading

    threading._shutdown()  # type: ignore[attr-defined]  # waits for non-daemon threads, as the interpreter does
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    _REAL_EXIT(code)


def _preload() -> bool:
    """Import the modules named on stdin and parse the specs, until the last preload; False if stdin closed first."""
    import importlib

    pending = b""
    while True:
        while b"\n" not in pending:
            chunk = os.read(0, 65536)
            if not chunk:
                return False
            pending += chunk
        line, _, pending = pending.partition(b"\n")
        message = json.loads(line)
        for name in message["modules"]:
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001, S112 - what will not import here, the worker imports itself
                continue
        if message.get("last"):
            _parse_specs(message["specs"], message["limits"], message["checked"])
            return True


def _parse_specs(paths: list[str], limits: dict[str, Any], checked: list[str]) -> None:
    """Parse the run's spec files into the loader's cache, which the forked workers inherit."""
    from conformance.spec.limits import SpecLimits
    from conformance.spec.loader import load_spec, trust_schema_checked

    trust_schema_checked(checked)
    for path in paths:
        try:
            load_spec(Path(path), SpecLimits(**limits))
        except BaseException:  # noqa: BLE001, S112 - a worker that parses it reports what is wrong
            continue


class _Child(NamedTuple):
    pid: int
    pidfd: int  # readable when the child has ended
    launcher: socket.socket


def _loop(listener: socket.socket) -> bool:
    """Serve launchers until stdin closes; True in a forked child."""
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, _Child] = {}  # by pidfd
    while True:
        for key, _ in selector.select():
            if key.fd == 0:
                if not os.read(0, 4096):
                    for child in children.values():  # the run is over, or its controller has gone
                        os.kill(child.pid, signal.SIGKILL)
                        os.waitpid(child.pid, 0)
                    return False
            elif key.fileobj is listener:
                launcher, _ = listener.accept()
                if _fork(launcher, selector, listener, children):
                    return True
            elif key.data is None:  # a child ended: tell its launcher how
                child = children.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(child.pid, 0)
                code = os.waitstatus_to_exitcode(status)
                _answer(child.launcher, b"%d\n" % (code if code >= 0 else 128 - code))
                with contextlib.suppress(KeyError):
                    selector.unregister(child.launcher)
                child.launcher.close()
            else:  # a launcher hung up (execnet killed it): its worker goes too
                selector.unregister(key.fileobj)
                os.kill(key.data.pid, signal.SIGKILL)


def _fork(
    launcher: socket.socket, selector: selectors.BaseSelector, listener: socket.socket, children: dict[int, _Child]
) -> bool:
    """Fork a worker on the launcher's streams; True in the child."""
    try:
        uid = _peer_uid(launcher)
        message, fds, _, _ = socket.recv_fds(launcher, 65536, 3)
        size, where = int.from_bytes(message[:8], "big"), message[8:]
        while len(where) < size and (chunk := launcher.recv(size - len(where))):
            where += chunk
    except OSError:
        launcher.close()
        return False
    if uid != os.getuid() or len(fds) != 3 or len(where) != size or _threads() > 1:
        for fd in fds:
            os.close(fd)
        _answer(launcher, PLAIN)
        launcher.close()
        return False
    pid = os.fork()
    if pid == 0:
        selector.close()
        listener.close()
        for child in children.values():
            os.close(child.pidfd)
            child.launcher.close()
        launcher.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        cwd, *environ = where.split(b"\0")
        os.chdir(cwd)
        os.environb.clear()  # the launcher's environment: what the controller had when xdist started it
        os.environb.update(entry.partition(b"=")[::2] for entry in environ if entry)
        return True
    for fd in fds:
        os.close(fd)
    child = _Child(pid, os.pidfd_open(pid), launcher)
    children[child.pidfd] = child
    selector.register(child.pidfd, selectors.EVENT_READ)
    selector.register(launcher, selectors.EVENT_READ, child)
    _answer(launcher, b"forked %d\n" % pid)
    return False


def _peer_uid(connection: socket.socket) -> int:
    import struct

    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _threads() -> int:
    """Threads of this process, the interpreter's and any a C extension started."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 2  # cannot tell: do not fork


def _answer(connection: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        connection.sendall(data)
