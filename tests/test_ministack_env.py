"""ministack runs from an environment of its own: no extra pins its botocore into the user's."""

from __future__ import annotations

import http.client
import importlib.metadata
import subprocess
import threading
import time
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conformance.backends import ministack


def test_no_extra_pins_botocore_or_ministack() -> None:
    # Installing .[test] must leave boto3 and botocore where .[all] put them.
    for line in importlib.metadata.requires("gsp-conformance") or []:
        req = Requirement(line)
        assert req.name.lower() not in ("botocore", "ministack"), line
        if req.name.lower() == "boto3":
            assert not any(spec.operator in ("==", "===", "~=") for spec in req.specifier), line


def test_a_named_python_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ministack.PYTHON_ENV, "/nonexistent/python")
    with pytest.raises(
        ministack.MinistackUnavailable, match=f"/nonexistent/python does not exist; set {ministack.PYTHON_ENV}"
    ):
        ministack.command("/tmp", {})
    argv, env = ministack.command("/data", {"PYTHONPATH": "/user/site", "HOME": "/h"}, explicit=__file__)
    assert argv[0] == __file__ and env["BIND_HOST"] == "127.0.0.1" and env["S3_DATA_DIR"] == "/data"
    assert "PYTHONPATH" not in env and env["HOME"] == "/h"  # nothing of the user's import path leaks in


def test_cache_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ministack.env_dir() == tmp_path / "gsp-conformance" / f"ministack-{ministack.VERSION}"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ministack.env_dir() == Path.home() / ".cache" / "gsp-conformance" / f"ministack-{ministack.VERSION}"


def test_setup_failure_is_one_line_naming_the_folder_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ministack.PYTHON_ENV, raising=False)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(ministack.MinistackUnavailable) as caught:
        ministack.python()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot set up ministack's environment in {ministack.env_dir()}: ")
    assert message.endswith(f"; set {ministack.PYTHON_ENV} to a Python that has ministack=={ministack.VERSION}")


def test_pip_failure_leaves_no_ready_venv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ministack.PYTHON_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as without a network: no package registry answers
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(ministack.MinistackUnavailable, match="ministack==1.5.33"):
        ministack.python()
    assert not (ministack.env_dir() / "gspc-ready").exists()


def test_concurrent_first_uses_set_up_one_venv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ministack.PYTHON_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ministack.env_dir().mkdir(parents=True)  # a half-made venv from an interrupted first use: made again
    made = []

    def fake_make(folder: Path, interpreter: Path) -> None:
        made.append(folder)
        time.sleep(0.3)
        (folder / "gspc-ready").write_text("")

    monkeypatch.setattr(ministack, "_make_venv", fake_make)
    found: list[str] = []
    threads = [threading.Thread(target=lambda: found.append(ministack.python())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [ministack.env_dir()]
    assert found == [str(ministack.venv_python())] * 3


def test_starts_from_its_own_environment(tmp_path: Path) -> None:
    """The real thing: the cached venv (set up on first use) or $GSPC_MINISTACK_PYTHON, serving on 127.0.0.1."""
    try:
        argv, env = ministack.command(str(tmp_path), {"PATH": "/usr/bin:/bin"})
    except ministack.MinistackUnavailable as exc:
        pytest.skip(f"s3@ministack: {exc}")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline())
        for _ in range(100):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/_ministack/health")
                assert conn.getresponse().status == 200
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
            finally:
                conn.close()
    finally:
        proc.stdin.close()  # its signal to stop
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
