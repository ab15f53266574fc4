"""The s3 driver against moto in-process, moto's server (behind the fault proxy) and ministack.

ministack is the strict target for SSE-C; its tests skip where ministack cannot run
(see ``conformance.backends.s3.Ministack.unavailable``). The harness opens each target.
"""

from __future__ import annotations

import base64
import os
import random
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

from botocore import exceptions as bx  # noqa: E402

from conformance import errors  # noqa: E402
from conformance.adapters import sse  # noqa: E402
from conformance.adapters.s3 import S3Driver, classify  # noqa: E402
from conformance.driver import DriverError, Mode, check_driver  # noqa: E402
from conformance.targets import OpenTarget, Target, open_target, unavailable  # noqa: E402
from conformance.waivers import bundled_known_issues, load_waivers  # noqa: E402

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
SSE_C = {"server_side_encryption_customer_algorithm": "AES256", "server_side_encryption_customer_key": KEY}
WRONG_C = {"server_side_encryption_customer_algorithm": "AES256", "server_side_encryption_customer_key": OTHER_KEY}


#: The open target of each driver a fixture opened, by id(driver): its fault proxy lives there.
OPENED: dict[int, OpenTarget] = {}


def opened(name: str, **options: Any) -> Iterator[S3Driver]:
    target = open_target(Target.parse(name, options))
    OPENED[id(target.driver)] = target
    yield target.driver
    target.close()


def proxy_of(driver: S3Driver) -> Any:
    """The fault proxy the harness put in front of a fixture's driver (None on moto in-process)."""
    return OPENED[id(driver)].faults


def emulator_session() -> Any:
    import boto3

    return boto3.Session(region_name="us-east-1", aws_access_key_id="gspc-emulator", aws_secret_access_key="x")


@pytest.fixture(scope="module")
def moto() -> Iterator[S3Driver]:
    yield from opened("s3@moto", list_page_size=2)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[S3Driver]:
    yield from opened("s3@moto-server", read_timeout=1, list_page_size=2)


@pytest.fixture(scope="module")
def strict() -> Iterator[S3Driver]:
    reason = unavailable(Target("s3", "ministack"))
    if reason:
        pytest.skip(f"s3@ministack: {reason}")
    yield from opened("s3@ministack", read_timeout=1, list_page_size=2)


@pytest.fixture(params=["moto", "moto_server", "strict"])
def driver(request: pytest.FixtureRequest) -> Iterator[S3Driver]:
    found: S3Driver = request.getfixturevalue(request.param)
    yield found
    if proxy_of(found) is not None:
        proxy_of(found).clear()


@pytest.fixture
def proxied(moto_server: S3Driver) -> Iterator[S3Driver]:
    yield moto_server
    proxy_of(moto_server).clear()


@pytest.fixture
def base() -> str:
    """A fresh path prefix per test, so tests sharing a bucket never see each other's objects."""
    return f"t-{uuid.uuid4().hex[:8]}"


@contextmanager
def requests_sent(driver: S3Driver) -> Iterator[list[tuple[str, str]]]:
    """Every HTTP request the driver's client builds, as (method, url)."""
    sent: list[tuple[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append((request.method, request.url))

    driver._client.meta.events.register("request-created.s3", record)
    try:
        yield sent
    finally:
        driver._client.meta.events.unregister("request-created.s3", record)


def raw_client(driver: S3Driver) -> Any:
    """A plain boto3 client straight to the emulator behind the driver's fault proxy."""
    from botocore.config import Config

    port = proxy_of(driver).upstream[1]
    session = emulator_session()
    return session.client("s3", endpoint_url=f"http://127.0.0.1:{port}", config=Config(s3={"addressing_style": "path"}))


def failure(call: Any, *args: Any, **kwargs: Any) -> errors.StorageError:
    with pytest.raises(errors.StorageError) as caught:
        call(*args, **kwargs)
    return caught.value


# -- interface ---------------------------------------------------------------------------------


def test_capabilities_match_gsp_rules_and_append_is_absent(moto: S3Driver) -> None:
    caps = check_driver(moto)
    assert caps.operations == {"write", "read", "stat", "delete", "list"}
    assert caps.pairs["write"] == {"content_type"} | sse.SSE_WRITE_PAIRS
    assert caps.pairs["read"] == {"offset", "size"} | sse.SSE_C_PAIRS
    assert caps.pairs["stat"] == sse.SSE_C_PAIRS
    assert not caps.pairs.get("delete") and not caps.pairs.get("list")
    assert S3Driver.default_backends == ("moto",)
    with requests_sent(moto) as sent:
        with pytest.raises(errors.NotImplemented) as caught:
            moto.create_append("a")
        assert (caught.value.op, caught.value.path) == ("create_append", "a")
        with pytest.raises(errors.NotImplemented):
            moto.write_append(moto.write("n/a", b"x"), b"y")
        with pytest.raises(errors.NotImplemented):
            moto.commit_append(moto.stat("n/a"))
    assert [method for method, _ in sent] == ["PUT", "HEAD"]  # only the write and the stat


# -- operations --------------------------------------------------------------------------------


def test_write_read_stat_list_delete(driver: S3Driver, base: str) -> None:
    data = bytes(random.Random(1).randbytes(10_000))
    written = driver.write(f"{base}/dir/obj", data, content_type="text/plain")
    assert (written.path, written.mode, written.size, written.content_type) == (
        f"{base}/dir/obj",
        Mode.READ,
        len(data),
        "text/plain",
    )
    assert written.etag and '"' not in written.etag
    driver.write(f"{base}/dir/other", b"")
    driver.write(f"{base}/unicode-路径 with space", b"u")
    assert driver.read(f"{base}/dir/obj") == data
    assert driver.read(f"{base}/dir/obj", offset=10, size=20) == data[10:30]
    assert driver.read(f"{base}/dir/obj", offset=9_990) == data[9_990:]
    assert driver.read(f"{base}/dir/obj", size=5) == data[:5]
    assert driver.read(f"{base}/dir/obj", offset=3, size=0) == b""
    assert driver.read(f"{base}/dir/obj", offset=20_000) == b""
    assert driver.read(f"{base}/dir/other") == b""
    assert driver.read(f"{base}/unicode-路径 with space") == b"u"
    stat = driver.stat(f"{base}/dir/obj")
    assert (stat.size, stat.etag, stat.content_type, stat.mode) == (len(data), written.etag, "text/plain", Mode.READ)
    assert stat.system == {}  # nothing encrypted, nothing reported
    listed = sorted((o.path, o.size) for o in driver.list(f"{base}/"))
    assert listed == [(f"{base}/dir/obj", len(data)), (f"{base}/dir/other", 0), (f"{base}/unicode-路径 with space", 1)]
    assert [o.path for o in driver.list(f"{base}/di")] == [f"{base}/dir/obj", f"{base}/dir/other"]
    assert driver.delete(f"{base}/dir/obj") is None
    assert driver.delete(f"{base}/dir/obj") is None  # idempotent
    assert driver.delete(f"{base}/never/was") is None
    for op in ("stat", "read"):
        err = failure(getattr(driver, op), f"{base}/dir/obj")
        assert isinstance(err, errors.ObjectNotExist)
        assert (err.op, err.path, err.driver) == (op, f"{base}/dir/obj", "s3")
        assert isinstance(err.__cause__, bx.ClientError)
    assert isinstance(failure(driver.read, f"{base}/dir/obj", size=0), errors.ObjectNotExist)
    assert isinstance(failure(driver.read, f"{base}/dir/other", offset=-1), errors.RestrictionDissatisfied)


def test_list_follows_pages(moto_server: S3Driver, base: str) -> None:
    for index in range(5):
        moto_server.write(f"{base}/{index}", b"x")
    with requests_sent(moto_server) as sent:
        paths = [o.path for o in moto_server.list(base)]
    assert paths == [f"{base}/{index}" for index in range(5)]
    assert len(sent) == 3  # pages of 2, 2 and 1


def test_moto_in_process_leaves_other_endpoints_alone(moto: S3Driver, moto_server: S3Driver, base: str) -> None:
    before = proxy_of(moto_server).requests
    moto.write(f"{base}/a", b"in-process")
    moto_server.write(f"{base}/a", b"server")
    assert proxy_of(moto_server).requests == before + 1
    assert (moto.read(f"{base}/a"), moto_server.read(f"{base}/a")) == (b"in-process", b"server")


# -- server-side encryption ------------------------------------------------------------------------


def test_sse_s3_and_kms_are_reported_by_stat(driver: S3Driver, base: str) -> None:
    written = driver.write(f"{base}/s3", b"aes", server_side_encryption="AES256")
    assert written.system == {"server_side_encryption": "AES256"}
    assert driver.stat(f"{base}/s3").system == {"server_side_encryption": "AES256"}
    assert driver.read(f"{base}/s3") == b"aes"
    driver.write(
        f"{base}/kms",
        b"kms",
        server_side_encryption="aws:kms",
        server_side_encryption_aws_kms_key_id="gspc-key-1",
        server_side_encryption_bucket_key_enabled=True,
    )
    system = driver.stat(f"{base}/kms").system
    assert system["server_side_encryption"] == "aws:kms"
    assert system["server_side_encryption_aws_kms_key_id"] == "gspc-key-1"
    # Only what the service reports: moto echoes the bucket key, ministack does not.
    assert system.get("server_side_encryption_bucket_key_enabled") in (True, None)
    assert driver.read(f"{base}/kms") == b"kms"


def test_bucket_key_is_echoed_by_moto(moto: S3Driver, base: str) -> None:
    moto.write(f"{base}/k", b"k", server_side_encryption="aws:kms", server_side_encryption_bucket_key_enabled=True)
    assert moto.stat(f"{base}/k").system == {
        "server_side_encryption": "aws:kms",
        "server_side_encryption_bucket_key_enabled": True,
    }


@pytest.mark.parametrize("name", ["moto", "moto_server"])
def test_moto_ignores_sse_c(name: str, request: pytest.FixtureRequest, base: str) -> None:
    """A finding about s3@moto, kept visible: SSE-C headers are accepted and ignored."""
    moto_driver: S3Driver = request.getfixturevalue(name)
    written = moto_driver.write(f"{base}/c", b"plain", **SSE_C)
    assert "server_side_encryption_customer_key_md5" not in written.system
    assert moto_driver.read(f"{base}/c") == b"plain"  # real S3: 400 InvalidRequest
    assert moto_driver.read(f"{base}/c", **WRONG_C) == b"plain"  # real S3: 403 AccessDenied
    assert moto_driver.stat(f"{base}/c", **SSE_C).system == {}


def test_sse_c_is_enforced_by_the_strict_emulator(strict: S3Driver, base: str) -> None:
    path = f"{base}/c"
    written = strict.write(path, b"secret data", **SSE_C)
    assert written.system == {
        "server_side_encryption_customer_algorithm": "AES256",
        "server_side_encryption_customer_key_md5": sse.key_md5(KEY),
    }
    secrets = [base64.b64encode(KEY).decode(), base64.b64encode(OTHER_KEY).decode(), KEY.hex()]
    for pairs in ({}, WRONG_C):
        for op in ("read", "stat"):
            err = failure(getattr(strict, op), path, **pairs)
            assert type(err) in (errors.Unexpected, errors.PermissionDenied), (op, pairs, err)
            assert not any(s in str(err) for s in secrets)
    assert isinstance(failure(strict.read, path, **WRONG_C), errors.PermissionDenied)  # 403 AccessDenied
    assert strict.read(path, **SSE_C) == b"secret data"
    assert strict.read(path, offset=7, size=4, **SSE_C) == b"data"
    stat = strict.stat(path, **SSE_C)
    assert stat.size == 11
    assert stat.system == {
        "server_side_encryption_customer_algorithm": "AES256",
        "server_side_encryption_customer_key_md5": sse.key_md5(KEY),
    }
    plain = strict.write(f"{base}/plain", b"p")
    assert plain.system == {}
    assert isinstance(failure(strict.read, f"{base}/plain", **SSE_C), errors.Unexpected)  # 400 InvalidRequest
    strict.delete(path)  # delete needs no key
    assert isinstance(failure(strict.stat, path, **SSE_C), errors.ObjectNotExist)


def test_strict_emulator_refuses_an_unknown_algorithm_server_side(strict: S3Driver, base: str) -> None:
    """The driver refuses 'foo' itself; the emulator would too (400), unlike moto."""
    with pytest.raises(errors.RestrictionDissatisfied):
        strict.write(f"{base}/foo", b"x", server_side_encryption="foo")
    client = raw_client(strict)
    with pytest.raises(bx.ClientError) as caught:
        client.put_object(Bucket=strict.bucket, Key="gspc/foo", Body=b"x", ServerSideEncryption="foo")
    assert caught.value.response["Error"]["Code"] == "InvalidArgument"


@pytest.mark.parametrize(
    ("op", "pair"),
    [
        ("read", "server_side_encryption"),
        ("read", "server_side_encryption_aws_kms_key_id"),
        ("read", "server_side_encryption_context"),
        ("read", "server_side_encryption_bucket_key_enabled"),
        ("read", "content_type"),
        ("stat", "server_side_encryption"),
        ("stat", "server_side_encryption_aws_kms_key_id"),
        ("stat", "offset"),
        ("delete", "server_side_encryption_customer_key"),
        ("delete", "server_side_encryption_customer_algorithm"),
        ("delete", "server_side_encryption"),
        ("list", "server_side_encryption_customer_algorithm"),
        ("list", "server_side_encryption"),
        ("write", "offset"),
        ("write", "no_such_pair"),
    ],
)
def test_pairs_outside_gsp_rules_are_refused(moto: S3Driver, op: str, pair: str) -> None:
    value: Any = KEY if pair.endswith("_key") else "AES256"
    args: tuple[Any, ...] = ("p/x", b"d") if op == "write" else ("p/x",)
    with requests_sent(moto) as sent, pytest.raises(errors.PairUnsupported) as caught:
        result = getattr(moto, op)(*args, **{pair: value})
        list(result) if op == "list" else None
    assert (caught.value.pair, caught.value.op) == (pair, op)
    assert sent == []


ALG = {"server_side_encryption_customer_algorithm": "AES256"}
CKEY = "server_side_encryption_customer_key"
BAD_SSE = {
    "key-31": ({**ALG, CKEY: bytes(31)}, errors.RestrictionDissatisfied),
    "key-33": ({**ALG, CKEY: bytes(33)}, errors.RestrictionDissatisfied),
    "key-str": ({**ALG, CKEY: "k" * 32}, errors.RestrictionDissatisfied),
    "no-key": (ALG, errors.RestrictionDissatisfied),
    "aes128": ({"server_side_encryption_customer_algorithm": "AES128", CKEY: KEY}, errors.RestrictionDissatisfied),
    "no-algorithm": ({CKEY: KEY}, errors.PairRequired),
    "sse-foo": ({"server_side_encryption": "foo"}, errors.RestrictionDissatisfied),
    "aes-with-kms-id": (
        {"server_side_encryption": "AES256", "server_side_encryption_aws_kms_key_id": "k"},
        errors.RestrictionDissatisfied,
    ),
    "kms-id-alone": ({"server_side_encryption_aws_kms_key_id": "k"}, errors.PairRequired),
    "sse-s3-and-c": ({"server_side_encryption": "AES256", **SSE_C}, errors.RestrictionDissatisfied),
}


@pytest.mark.parametrize("case", list(BAD_SSE))
def test_bad_sse_pairs_are_refused_before_any_request(proxied: S3Driver, base: str, case: str) -> None:
    pairs, error = BAD_SSE[case]
    proxy = proxy_of(proxied)
    before = proxy.requests
    with requests_sent(proxied) as sent:
        err = failure(proxied.write, f"{base}/x", b"data", **pairs)
        assert type(err) is error and (err.op, err.path) == ("write", f"{base}/x")
        if "server_side_encryption" not in pairs and "server_side_encryption_aws_kms_key_id" not in pairs:
            for op in ("read", "stat"):
                assert type(failure(getattr(proxied, op), f"{base}/x", **pairs)) is error
    assert sent == [] and proxy.requests == before  # nothing reached the wire
    assert isinstance(failure(proxied.stat, f"{base}/x"), errors.ObjectNotExist)


# -- errors ------------------------------------------------------------------------------------------

FAULTS = {
    "500": ({"kind": "status", "status": 500, "code": "InternalError"}, errors.ServiceInternal),
    "502": ({"kind": "status", "status": 502, "code": "BadGateway"}, errors.ServiceInternal),
    "504": ({"kind": "status", "status": 504, "code": "GatewayTimeout"}, errors.ServiceInternal),
    "503-slowdown": ({"kind": "status", "status": 503, "code": "SlowDown"}, errors.RequestThrottled),
    "429": ({"kind": "status", "status": 429, "code": "TooManyRequests", "retry_after": 2}, errors.RequestThrottled),
    "403": ({"kind": "status", "status": 403, "code": "AccessDenied"}, errors.PermissionDenied),
    "404": ({"kind": "status", "status": 404, "code": "NoSuchKey"}, errors.ObjectNotExist),
    "400": ({"kind": "status", "status": 400, "code": "InvalidArgument"}, errors.Unexpected),
    "501": ({"kind": "status", "status": 501, "code": "NotImplemented"}, errors.Unexpected),
    "reset": ({"kind": "reset"}, errors.NetworkError),
}


@pytest.mark.parametrize("op", ["read", "stat", "write", "delete", "list"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_errors_map_to_the_taxonomy(proxied: S3Driver, base: str, op: str, fault: str) -> None:
    spec, expected = FAULTS[fault]
    if op == "delete" and expected is errors.ObjectNotExist:
        expected = type(None)  # delete is idempotent: a missing key is success
    path = f"{base}/obj"
    proxied.write(path, b"content")
    proxy = proxy_of(proxied)
    proxy.inject(**spec)
    args: tuple[Any, ...] = (path, b"new") if op == "write" else (path,)
    try:
        result = getattr(proxied, op)(*args)
        if op == "list":
            result = list(result)
        raised = None
    except errors.StorageError as exc:
        raised = exc
    proxy.clear()
    assert type(raised) is expected, (fault, op, raised)
    assert proxy.faults_applied >= 1
    if raised is not None:
        assert (raised.op, raised.path, raised.driver) == (op, path, "s3")
        assert raised.retryable is (expected in (errors.ServiceInternal, errors.RequestThrottled, errors.NetworkError))
        assert isinstance(raised.__cause__, bx.ClientError | bx.BotoCoreError)
        if fault == "429":
            assert raised.retry_after == 2.0
    assert proxied.read(path) == (b"new" if op == "write" and raised is None else b"content")


def test_stall_times_out_as_network_error(proxied: S3Driver, base: str) -> None:
    import time

    proxied.write(f"{base}/s", b"s")
    proxy_of(proxied).inject("stall", seconds=5, times=1)
    start = time.monotonic()
    err = failure(proxied.read, f"{base}/s")
    assert isinstance(err, errors.NetworkError) and err.retryable
    assert isinstance(err.__cause__, bx.ReadTimeoutError)
    assert time.monotonic() - start < 3  # read_timeout=1, no SDK retries
    assert proxied.read(f"{base}/s") == b"s"


def test_connection_refused_is_network_error() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    driver = S3Driver(
        "gspc-nowhere",
        endpoint_url=f"http://127.0.0.1:{port}",
        session=emulator_session(),
        connect_timeout=1,
        retries=0,
    )
    err = failure(driver.stat, "a")
    assert isinstance(err, errors.NetworkError) and isinstance(err.__cause__, bx.EndpointConnectionError)


def _client_error(code: str, status: int, message: str = "m", headers: dict[str, str] | None = None) -> Exception:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return bx.ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("NoSuchKey", 404), errors.ObjectNotExist),
        (_client_error("NotFound", 404), errors.ObjectNotExist),
        (_client_error("404", 404), errors.ObjectNotExist),
        (_client_error("NoSuchBucket", 404), errors.Unexpected),
        (_client_error("AccessDenied", 403), errors.PermissionDenied),
        (_client_error("SignatureDoesNotMatch", 403), errors.PermissionDenied),
        (_client_error("InternalError", 500), errors.ServiceInternal),
        (_client_error("InternalError", 200), errors.ServiceInternal),
        (_client_error("502", 502), errors.ServiceInternal),
        (_client_error("504", 504), errors.ServiceInternal),
        (_client_error("SlowDown", 503), errors.RequestThrottled),
        (_client_error("503", 503), errors.RequestThrottled),
        (_client_error("ServiceUnavailable", 503), errors.RequestThrottled),
        (_client_error("TooManyRequests", 429), errors.RequestThrottled),
        (_client_error("InvalidRequest", 400), errors.Unexpected),
        (_client_error("NotImplemented", 501), errors.Unexpected),
        (bx.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), errors.NetworkError),
        (bx.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), errors.NetworkError),
        (bx.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), errors.NetworkError),
        (bx.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), errors.NetworkError),
        (bx.ResponseStreamingError(error="broken"), errors.NetworkError),
        (ConnectionResetError(104, "reset"), errors.NetworkError),
        (bx.NoCredentialsError(), errors.Unexpected),
        (KeyError("surprise"), errors.Unexpected),
    ],
)
def test_classify(exc: Exception, expected: type) -> None:
    import urllib3.exceptions

    err = classify(exc, op="read", path="p", driver="s3")
    assert type(err) is expected and (err.op, err.path, err.driver) == ("read", "p", "s3")
    assert isinstance(
        classify(urllib3.exceptions.ProtocolError("x"), op="o", path=None, driver="s3"), errors.NetworkError
    )


def test_messages_never_carry_secrets() -> None:
    b64 = base64.b64encode(KEY).decode()
    echo = _client_error("InvalidArgument", 400, f"bad header value {b64} from AKIAGSPCLEAK01 and tok-SECRET")
    err = classify(echo, op="read", path="p", driver="s3", secrets=[b64, "AKIAGSPCLEAK01", "tok-SECRET"])
    assert b64 not in str(err) and "AKIAGSPCLEAK01" not in str(err) and "tok-SECRET" not in str(err)
    assert "[redacted]" in str(err)
    invalid = bx.ParamValidationError(report=f"Invalid type for parameter SSECustomerKey, value: {b64}")
    assert b64 not in str(classify(invalid, op="write", path="p", driver="s3"))


def test_service_echo_of_secrets_is_scrubbed(moto_server: S3Driver, base: str) -> None:
    """A server answer quoting the SSE-C key or the credentials never reaches the error message."""
    import boto3

    creds = {"aws_access_key_id": "AKIAGSPCLEAK02", "aws_secret_access_key": "gspc-secret-DO-NOT-LEAK"}
    session = boto3.Session(region_name="us-east-1", aws_session_token="gspc-token-DO-NOT-LEAK", **creds)
    driver = S3Driver(
        moto_server.bucket, endpoint_url=proxy_of(moto_server).url, session=session, retries=0, read_timeout=2
    )
    secrets = [*creds.values(), "gspc-token-DO-NOT-LEAK", base64.b64encode(KEY).decode()]
    try:
        proxy_of(moto_server).inject("status", status=400, code="InvalidArgument", message=" ".join(secrets))
        err = failure(driver.read, f"{base}/x", **SSE_C)
    finally:
        proxy_of(moto_server).clear()
    assert isinstance(err, errors.Unexpected) and "InvalidArgument" in str(err)
    assert not any(secret in str(err) or secret in err.message for secret in secrets)


# -- transient faults ---------------------------------------------------------------------------------


def test_transient_faults_never_lose_or_corrupt_data(proxied: S3Driver, base: str) -> None:
    old, new = random.Random(2).randbytes(1 << 20), random.Random(3).randbytes(2 << 20)
    path = f"{base}/data"
    proxied.write(path, old)
    proxy = proxy_of(proxied)
    proxy.inject("status", status=500, code="InternalError", times=1)
    assert isinstance(failure(proxied.read, path), errors.ServiceInternal)
    assert proxied.read(path) == old  # the fault is spent: the same read succeeds, intact
    proxy.inject("reset")
    assert isinstance(failure(proxied.write, path, new), errors.NetworkError)
    proxy.clear()
    assert proxied.read(path) in (old, new)  # never a part
    proxied.write(path, new)
    assert proxied.read(path) == new


def test_retries_option_rides_out_a_single_fault(moto_server: S3Driver, base: str) -> None:
    moto_server.write(f"{base}/r", b"retry me")
    retrying = S3Driver(
        moto_server.bucket,
        endpoint_url=proxy_of(moto_server).url,
        session=emulator_session(),
        retries=1,
    )
    proxy = proxy_of(moto_server)
    applied = proxy.faults_applied
    try:
        proxy.inject("status", status=503, code="SlowDown", times=1)
        assert retrying.read(f"{base}/r") == b"retry me"
    finally:
        proxy.clear()
    assert proxy.faults_applied == applied + 1


# -- confinement to the key prefix -------------------------------------------------------------------------


def test_keys_outside_the_prefix_are_never_touched(moto_server: S3Driver, base: str) -> None:
    jail = f"jail-{base}"
    driver = S3Driver(
        moto_server.bucket,
        endpoint_url=proxy_of(moto_server).url,
        session=emulator_session(),
        key_prefix=f"/{jail}/",
        list_page_size=2,
    )
    client = raw_client(moto_server)
    foreign = {jail: b"1", f"{jail}x/a": b"2", f"{jail}-other/a": b"3", f"other/{jail}/a": b"4", "a": b"5"}
    for key, body in foreign.items():
        client.put_object(Bucket=moto_server.bucket, Key=key, Body=body)
    with requests_sent(driver) as sent:
        for name in ("a", "b/c", jail):
            driver.write(name, b"mine")
        assert sorted(o.path for o in driver.list("")) == sorted(["a", "b/c", jail])
        for path in ("a", "b/c", jail, "x/a", f"other/{jail}/a"):
            driver.delete(path)
        for bad in ("../a", "/a", "a/../../b", "./a", "a//b", "", "a/", "..", "b/../../a"):
            err = failure(driver.delete, bad)
            assert isinstance(err, errors.RestrictionDissatisfied) and err.op == "delete"
            assert isinstance(failure(driver.write, bad, b"x"), errors.RestrictionDissatisfied)
        assert isinstance(failure(lambda: list(driver.list("../"))), errors.RestrictionDissatisfied)
        assert list(driver.list("")) == []
    for method, url in sent:
        parts = urlsplit(url)
        if parts.path.rstrip("/") == f"/{moto_server.bucket}":
            assert method == "GET" and f"prefix={jail}%2F" in parts.query, url  # a listing under the prefix
        else:
            assert unquote(parts.path).startswith(f"/{moto_server.bucket}/{jail}/"), (method, url)
    for key, body in foreign.items():
        assert client.get_object(Bucket=moto_server.bucket, Key=key)["Body"].read() == body


def test_bad_key_prefix_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="key_prefix"):
        S3Driver("b", key_prefix="a/../b", session=emulator_session())


# -- targets ---------------------------------------------------------------------------------------


def test_unknown_backends_and_missing_options_are_one_line_driver_errors() -> None:
    with pytest.raises(DriverError) as caught:
        open_target(Target("s3", "nope"))
    assert "no s3 backend 'nope' (known backends: " in str(caught.value) and "\n" not in str(caught.value)
    assert "moto-server" in str(caught.value)
    with pytest.raises(DriverError, match="bucket"):
        open_target(Target("s3"))
    with pytest.raises(DriverError, match="bucket"):
        open_target(Target("s3", "http://127.0.0.1:1"))


def test_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert unavailable(Target("s3", "moto")) is None
    assert unavailable(Target("s3", "moto-server")) is None
    monkeypatch.setenv("GSPC_MINISTACK_PYTHON", "/nonexistent/python")
    reason = unavailable(Target("s3", "ministack"))
    assert reason and "ministack" in reason
    with pytest.raises(Exception, match="ministack"):
        open_target(Target("s3", "ministack"))


def test_url_target_uses_the_standard_credential_chain(
    moto_server: S3Driver, monkeypatch: pytest.MonkeyPatch, base: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "gspc-env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "gspc-env-secret")
    url = proxy_of(moto_server).url
    target = open_target(Target.parse(f"s3@{url}", {"bucket": moto_server.bucket, "key_prefix": "url"}))
    driver = target.driver
    try:
        assert target.faults is None and driver.key_prefix == "url/" and driver.endpoint_url == url
        assert driver._client._request_signer._credentials.access_key == "gspc-env-key"
        driver.write(f"{base}/u", b"via url")
        assert driver.read(f"{base}/u") == b"via url"
        assert raw_client(moto_server).head_object(Bucket=moto_server.bucket, Key=f"url/{base}/u")
        driver.delete(f"{base}/u")
    finally:
        target.close()


@pytest.mark.parametrize("backend", ["moto-server", "ministack"])
def test_close_stops_what_the_target_started(backend: str) -> None:
    reason = unavailable(Target("s3", backend))
    if reason:
        pytest.skip(reason)
    target = open_target(Target("s3", backend))
    proxy = target.faults
    assert proxy is not None and target.driver.endpoint_url == proxy.url
    target.driver.write("a", b"x")
    ports = (proxy.port, proxy.upstream[1])
    target.close()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    target.close()  # twice is harmless


def test_moto_target_through_targets_module(base: str) -> None:
    target = open_target(Target.parse("s3@moto"))
    try:
        target.driver.write(f"{base}/m", b"m")
        assert target.driver.read(f"{base}/m") == b"m" and target.faults is None
    finally:
        target.close()
    assert os.environ.get("AWS_ACCESS_KEY_ID") != "FOOBARKEY"  # moto did not touch the environment


@pytest.mark.parametrize("target", ["s3@moto", "s3@moto-server"])
def test_moto_targets_ship_waivers_for_exactly_their_sse_c_findings(target: str) -> None:
    path = bundled_known_issues(target)
    assert path is not None
    waivers = load_waivers(path)  # schema-checked
    assert {w.target for w in waivers} == {target}
    assert {(w.spec, w.clause) for w in waivers} == {
        ("sse", "sse.c-key-required"),
        ("sse", "sse.c-stat"),
        ("sse", "sse.c-stat-needs-key"),
    }
    assert all(w.reason and w.link and w.expires is None for w in waivers)
    assert bundled_known_issues("s3@ministack") is None  # the strict target needs none


def test_options_given_as_text_are_converted(moto_server: S3Driver) -> None:
    driver = S3Driver(
        moto_server.bucket,
        endpoint_url=proxy_of(moto_server).url,
        session=emulator_session(),
        connect_timeout="1.5",
        read_timeout="2",
        retries="0",
        list_page_size="3",
        verify="false",
    )
    config = driver._client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (1.5, 2.0, 1)
    assert driver._paging == {"PageSize": 3}


def test_a_refused_credential_or_missing_bucket_is_one_line_at_open(
    moto_server: S3Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conformance.backends.faultproxy import FaultProxy

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-0000000000000000000000")

    upstream = moto_server.endpoint_url.rsplit(":", 1)[1].split("/")[0]
    with FaultProxy("127.0.0.1", int(upstream)) as proxy:
        proxy.inject("status", status=403, code="AccessDenied")
        with pytest.raises(DriverError, match=r"^s3: the credentials were refused for bucket 'gone'"):
            open_target(Target.parse(f"s3@{proxy.url}", {"bucket": "gone", "region": "us-east-1", "retries": "0"}))
        proxy.clear()
        with pytest.raises(DriverError, match=r"^s3: bucket 'no-such-bucket-x' at .* does not exist"):
            options = {"bucket": "no-such-bucket-x", "region": "us-east-1", "retries": "0"}
            open_target(Target.parse(f"s3@{proxy.url}", options))
