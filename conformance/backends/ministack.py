"""ministack, the S3 emulator that enforces SSE-C, in an environment of its own.

ministack pins a botocore of its own, so it never joins the user's environment: it runs from the
Python named by $GSPC_MINISTACK_PYTHON, or from a venv the harness sets up on first use in the
user's cache folder (one per ministack version, shared by every run and xdist worker).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from conformance.backends import LIST_PAGE_SIZE

VERSION = "1.5.33"
PYTHON_ENV = "GSPC_MINISTACK_PYTHON"
SETUP_TIMEOUT = 600.0  # seconds for creating the venv and installing ministack from the package registry
_READY = "gspc-ready"  # written last: a venv without it was left half-made and is made again

#: The server child: binds 127.0.0.1 on an ephemeral port, prints the port, exits when stdin closes.
#: Its listings hold at most $GSPC_LIST_PAGE_SIZE keys a page, whatever MaxKeys asks (ministack's one
#: place that cuts ListObjects and ListObjectsV2 to MaxKeys is wrapped).
_CHILD = """
import asyncio, os, socket, sys, threading
listener = socket.create_server(("127.0.0.1", 0), backlog=128)
os.environ["GATEWAY_PORT"] = str(listener.getsockname()[1])
from hypercorn.asyncio import serve
from hypercorn.config import Config
from ministack.app import app
import ministack.services.s3 as s3
collect, page = s3._collect_list_entries, int(os.environ["GSPC_LIST_PAGE_SIZE"])
s3._collect_list_entries = lambda objects, prefix, delimiter, max_keys, start: collect(
    objects, prefix, delimiter, min(max_keys, page), start)
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


class MinistackUnavailable(Exception):
    """ministack's environment cannot be found or set up: one line naming the fix (the caller prefixes its target)."""


def env_dir() -> Path:
    """The cached venv's folder: $XDG_CACHE_HOME (or ~/.cache)/gsp-conformance/ministack-VERSION."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gsp-conformance" / f"ministack-{VERSION}"


def venv_python() -> Path:
    """The cached venv's interpreter (it may not exist before the first start)."""
    return env_dir() / "bin" / "python"


def python(explicit: str | None = None) -> str:
    """A Python that has ministack: ``explicit``, $GSPC_MINISTACK_PYTHON, or the cached venv's (set up if missing)."""
    named = explicit or os.environ.get(PYTHON_ENV)
    if named and Path(named) != venv_python():
        if not Path(named).exists():
            raise MinistackUnavailable(f"{named} does not exist; set {PYTHON_ENV} to a Python with ministack {VERSION}")
        return named
    return _cached_venv()


def command(data_dir: str, env: Mapping[str, str], explicit: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start ministack (S3 only) on 127.0.0.1, keeping its data in ``data_dir``.

    The child prints its port on stdout and exits when its stdin closes; ``env`` is the base environment.
    """
    child_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME", "LOCALSTACK_PERSISTENCE")}
    child_env |= {
        "SERVICES": "s3",
        "LOG_LEVEL": "WARNING",
        "S3_PERSIST": "0",
        "S3_DATA_DIR": data_dir,
        "TMPDIR": data_dir,
        "BIND_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        "GSPC_LIST_PAGE_SIZE": str(LIST_PAGE_SIZE),
    }
    return [python(explicit), "-c", _CHILD], child_env


def _cached_venv() -> str:
    folder, interpreter = env_dir(), venv_python()
    if (folder / _READY).exists():
        return str(interpreter)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _locked(folder.parent / f"{folder.name}.lock"):
            if not (folder / _READY).exists():  # another process may have made it while this one waited
                _make_venv(folder, interpreter)
    except (OSError, subprocess.SubprocessError) as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise MinistackUnavailable(f"cannot set up ministack's environment in {folder}: {reason}; "
                                   f"set {PYTHON_ENV} to a Python that has ministack=={VERSION}") from None  # fmt: skip
    return str(interpreter)


def _make_venv(folder: Path, interpreter: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_USER")}
    steps = [
        [sys.executable, "-m", "venv", str(folder)],
        [str(interpreter), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"ministack=={VERSION}"],
    ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=SETUP_TIMEOUT, check=False)
        if done.returncode != 0:
            lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            errors = [line for line in lines if "error" in line.lower()] or lines
            raise OSError(errors[-1] if errors else f"{argv[2]} exited with {done.returncode}")
    (folder / _READY).write_text(f"ministack=={VERSION}\n", encoding="utf-8")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, so concurrent first uses set the venv up once."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
