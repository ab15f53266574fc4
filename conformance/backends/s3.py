"""S3 backends: moto in-process, moto's server and ministack in a child process, and any endpoint by URL.

An endpoint gives an S3 driver the bundled driver's options: ``bucket``, ``endpoint_url``,
``region`` and, on an emulator, short timeouts with no SDK retries (so injected faults surface).
Credentials travel in the standard AWS environment variables, as any boto3-based driver reads them.
Every emulator the harness starts answers at most ``LIST_PAGE_SIZE`` keys a listing page, whatever
MaxKeys a driver sends, so a driver that does not follow continuation tokens lists too little.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.backends import LIST_PAGE_SIZE, BackendError, Endpoint
from conformance.backends.processes import ServerProcess, child_env

REGION = "us-east-1"
#: Quick failure on emulators: no SDK retries, so injected faults surface, and short timeouts.
EMULATOR_OPTIONS = {"connect_timeout": 1.0, "read_timeout": 2.0, "retries": 0}
#: Credentials the emulators accept; not secrets, and used only where the user has none of their own.
EMULATOR_ENV = {"AWS_ACCESS_KEY_ID": "gspc-emulator", "AWS_SECRET_ACCESS_KEY": "gspc-emulator"}
INSTALL = "pip install 'gsp-conformance[s3]'"
BUCKET_NAME = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")

#: The server child: prints its port, and exits the moment stdin closes (it holds nothing to keep: a
#: graceful stop waits out the server's half-second poll).
_MOTO_CHILD = """
import os, sys
from conformance.backends.s3 import page_moto
page_moto()
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.buffer.read()
os._exit(0)
"""


def bucket_name() -> str:
    """A fresh bucket name, so targets sharing one emulator never collide."""
    return f"gspc-{secrets.token_hex(4)}"


def emulator_env() -> dict[str, str]:
    """The emulators' dummy credentials, unless the user's own chain already has a source the SDK prefers."""
    home = Path(os.environ.get("HOME", "~")).expanduser()
    sources = [os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")]
    # Setting them would override a profile that a real target of the same run relies on.
    if any(sources) or (home / ".aws" / "credentials").exists():
        return {}
    return dict(EMULATOR_ENV)


_moto_truncate: list[Any] = []  # moto's own truncation while this process pages it, once per page_moto()


def page_moto() -> None:
    """Make moto's S3 in this process answer at most LIST_PAGE_SIZE keys a listing page, whatever MaxKeys asks."""
    from moto.s3.models import S3Backend

    truncate = _moto_truncate[0] if _moto_truncate else S3Backend._truncate_result  # where moto cuts to MaxKeys

    def paged(self: Any, result_keys: Any, max_keys: int) -> Any:
        return truncate(self, result_keys, min(max_keys, LIST_PAGE_SIZE) if max_keys else max_keys)

    S3Backend._truncate_result = paged
    _moto_truncate.append(truncate)


def unpage_moto() -> None:
    """Undo one page_moto(); the last gives moto back its own page size."""
    from moto.s3.models import S3Backend

    truncate = _moto_truncate.pop()
    if not _moto_truncate:
        S3Backend._truncate_result = truncate


def _missing(*modules: str) -> str | None:
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"{', '.join(absent)} not installed ({INSTALL})" if absent else None


def _put_bucket(bucket: str, port: int) -> None:
    """Create the bucket on an emulator serving 127.0.0.1:port, by one unsigned request (they accept those).

    No SDK: importing and building a client would cost the run's start-up a third of a second.
    """
    if not BUCKET_NAME.fullmatch(bucket):  # what botocore checks before it sends a request
        raise BackendError(f"bucket {bucket!r}: a bucket name is 1 to 255 of a-z, A-Z, 0-9, '.', '-' and '_'")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("PUT", f"/{bucket}", headers={"Content-Length": "0"})
        response = connection.getresponse()
        body = response.read(300).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise BackendError(f"cannot create bucket {bucket!r}: {type(exc).__name__}: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise BackendError(f"cannot create bucket {bucket!r}: HTTP {response.status}: {' '.join(body.split())}")


def _create_bucket(bucket: str, env: Mapping[str, str]) -> None:
    """Create the bucket through boto3: in-process moto answers only what botocore sends."""
    import boto3

    credentials = {k.lower(): v for k, v in (dict(EMULATOR_ENV) | dict(env)).items()}
    client = boto3.Session(region_name=REGION, **credentials).client("s3")
    try:
        client.create_bucket(Bucket=bucket)
    except Exception as exc:
        raise BackendError(f"cannot create bucket {bucket!r}: {type(exc).__name__}: {exc}") from None


class _Server:
    """An S3 emulator in a child process, with a fresh bucket, behind which a fault proxy may stand."""

    service = "s3"
    default = False
    per_process = False
    name = ""

    def __init__(self, location: str | None = None) -> None:
        self._server: ServerProcess | None = None

    def _process(self) -> ServerProcess:
        raise NotImplementedError

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        try:
            self._server = self._process()
            bucket = str(options.get("bucket") or bucket_name())
            _put_bucket(bucket, self._server.port)
        except BaseException:
            self.close()
            raise
        return Endpoint(
            options={"bucket": bucket, "region": REGION, "endpoint_url": self._server.endpoint_url} | EMULATOR_OPTIONS,
            upstream=("127.0.0.1", self._server.port),
            address={"endpoint_url": "http://{address}"},
            env=emulator_env(),
            list_page_size=LIST_PAGE_SIZE,
        )

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()


class MotoServer(_Server):
    """moto's HTTP server in a child process of this interpreter (``s3@moto-server``)."""

    def unavailable(self) -> str | None:
        return _missing("boto3", "moto", "flask")

    def _process(self) -> ServerProcess:
        return ServerProcess("moto-server", [sys.executable, "-c", _MOTO_CHILD], child_env(), "/moto-api/")


class Ministack(_Server):
    """ministack (S3 only) in a child process of its own environment (``s3@ministack``; see backends.ministack)."""

    def __init__(self, location: str | None = None) -> None:
        super().__init__(location)
        self._data: str | None = None

    def unavailable(self) -> str | None:
        from conformance.backends import ministack

        named = os.environ.get(ministack.PYTHON_ENV)
        if named and not Path(named).exists():
            return f"{named} does not exist; set ${ministack.PYTHON_ENV} to a Python with ministack {ministack.VERSION}"
        return _missing("boto3")

    def _process(self) -> ServerProcess:
        from conformance.backends import ministack

        self._data = tempfile.mkdtemp(prefix="gspc-ministack-")
        try:
            argv, env = ministack.command(self._data, child_env())
        except ministack.MinistackUnavailable as exc:
            raise BackendError(str(exc)) from None
        return ServerProcess("ministack", argv, env, "/_ministack/health")

    def close(self) -> None:
        super().close()
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)
            self._data = None


class MotoInProcess:
    """moto's mock in this process (``s3@moto``): it patches botocore, so only boto3-based drivers bind to it."""

    service = "s3"
    default = False
    per_process = True  # a mock lives in one interpreter: every process starts its own
    out_of_process = "moto-server"  # what a driver in another process (exec:) uses: it cannot reach this mock

    def __init__(self, location: str | None = None) -> None:
        self._mock: Any = None
        self._bucket = ""

    def unavailable(self) -> str | None:
        return _missing("boto3", "moto")

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        from moto import mock_aws

        # Keep the process environment and boto3's default session untouched.
        self._mock = mock_aws(config={"core": {"mock_credentials": False, "reset_boto3_session": False}})
        self._mock.start()
        page_moto()
        self._bucket = str(options.get("bucket") or bucket_name())
        env = emulator_env()
        try:
            _create_bucket(self._bucket, env)
        except BaseException:
            self.close()
            raise
        return Endpoint(options={"bucket": self._bucket, "region": REGION}, env=env, list_page_size=LIST_PAGE_SIZE)

    def close(self) -> None:
        mock, self._mock = self._mock, None
        if mock is None:
            return
        # Nested mocks of one process share a state that outlives this target: drop its bucket.
        with contextlib.suppress(Exception):
            import boto3

            bucket = (
                boto3.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
                .resource("s3")
                .Bucket(self._bucket)
            )
            bucket.objects.all().delete()
            bucket.delete()
        unpage_moto()
        mock.stop()


class Remote:
    """Any S3 endpoint by URL (``s3@https://host``), or AWS itself (``s3``): bucket by option, the AWS chain."""

    service = "s3"
    default = True
    per_process = True  # nothing to start: each process reaches it alone

    def __init__(self, location: str | None = None) -> None:
        self.url = location

    def unavailable(self) -> str | None:
        return None  # the driver brings its own SDK; the endpoint needs nothing here

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        if not options.get("bucket"):
            raise BackendError("a real endpoint needs the option 'bucket' (--option bucket=NAME)")
        return Endpoint(options={"endpoint_url": self.url} if self.url else {})

    def close(self) -> None:
        return None
