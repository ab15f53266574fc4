"""The s3 driver on boto3: write, read, stat, delete, list, SSE pairs, and the GSP error taxonomy.

It serves ``s3``: the harness binds it to moto in-process (the default target), moto's server,
ministack, or any endpoint by URL (see ``conformance.backends.s3``). Credentials come only from
the standard AWS chain.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from conformance import errors
from conformance.adapters import sse
from conformance.driver import BaseDriver, Capabilities, DriverError, Mode, Object

#: Response fields of head/get/put that describe encryption, by the GSP name stat reports.
_SSE_FIELDS = {
    "ServerSideEncryption": "server_side_encryption",
    "SSEKMSKeyId": "server_side_encryption_aws_kms_key_id",
    "SSEKMSEncryptionContext": "server_side_encryption_context",
    "BucketKeyEnabled": "server_side_encryption_bucket_key_enabled",
    "SSECustomerAlgorithm": "server_side_encryption_customer_algorithm",
    "SSECustomerKeyMD5": "server_side_encryption_customer_key_md5",
}
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_DENIED = frozenset({"AccessDenied", "403", "Forbidden"})
_THROTTLED = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "503"}
)
_INTERNAL = frozenset({"InternalError", "500", "502", "504"})
_REDACTED = "[redacted]"


class S3Driver(BaseDriver):
    """boto3 on one bucket, every key under ``key_prefix``; S3 has no append, so none is declared."""

    name = "s3"
    service = "s3"
    default_backends = ("moto",)

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        key_prefix: str = "gspc",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 2,
        addressing_style: str | None = None,
        verify: bool | str | None = None,
        profile: str | None = None,
        list_page_size: int | None = None,
        session: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        if not bucket:
            raise DriverError("s3: option 'bucket' is required")
        prefix = str(key_prefix or "").strip("/")
        try:
            _check_path(prefix, allow_empty=True)
        except errors.RestrictionDissatisfied:
            raise DriverError(f"s3: key_prefix {key_prefix!r} has empty, '.' or '..' segments") from None
        self.bucket = bucket
        self.key_prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url
        self._paging = {"PageSize": int(list_page_size)} if list_page_size else {}
        try:
            session = session or boto3.Session(profile_name=profile, region_name=region)
        except Exception as exc:  # botocore's ProfileNotFound and kin: a configuration problem
            raise DriverError(f"s3: cannot build an AWS session: {type(exc).__name__}") from None
        config = Config(
            connect_timeout=float(connect_timeout),
            read_timeout=float(read_timeout),
            retries={"total_max_attempts": int(retries) + 1, "mode": "standard"},
            s3={"addressing_style": addressing_style or ("path" if endpoint_url else "auto")},
        )
        if isinstance(verify, str) and verify.lower() in ("true", "false", "1", "0", "yes", "no"):
            verify = verify.lower() in ("true", "1", "yes")  # given as text by `gspc --option`
        self._client = session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config, verify=verify)
        self._credentials = _credential_strings(session)
        self._caps = Capabilities(
            operations={"write", "read", "stat", "delete", "list"},
            pairs={
                "write": {"content_type"} | sse.SSE_WRITE_PAIRS,
                "read": {"offset", "size"} | sse.SSE_C_PAIRS,
                "stat": sse.SSE_C_PAIRS,
            },
        )

    def close(self) -> None:
        """Release the client's pooled connections."""
        self._client.close()

    # -- operations -----------------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return self._caps

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        params = self._params("write", path, pairs)
        params.update(_managed(sse.managed_encryption(pairs, "write", path, self.name)))
        if pairs.get("content_type") is not None:
            params["ContentType"] = str(pairs["content_type"])
        reply = self._call("write", path, pairs, lambda: self._client.put_object(Body=bytes(data), **params))
        return Object(
            path=path,
            mode=Mode.READ,
            size=len(data),
            etag=_etag(reply),
            content_type=pairs.get("content_type"),
            system=_system(reply),
        )

    def read(self, path: str, **pairs: Any) -> bytes:
        self.check_pairs("read", pairs, path)
        params = self._params("read", path, pairs)
        offset, size = _span(pairs, path, self.name)
        if size == 0:  # no Range can say "nothing"; still prove the object is there and readable
            self._call("read", path, pairs, lambda: self._client.head_object(**params))
            return b""
        if offset or size is not None:
            params["Range"] = f"bytes={offset}-" + ("" if size is None else str(offset + size - 1))

        def fetch() -> bytes:
            from botocore.exceptions import ClientError

            try:
                reply = self._client.get_object(**params)
            except ClientError as exc:
                if _code(exc) == "InvalidRange":  # a range past the end: nothing to give, as fs does
                    return b""
                raise
            with reply["Body"] as body:
                return body.read()

        return self._call("read", path, pairs, fetch)

    def stat(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("stat", pairs, path)
        params = self._params("stat", path, pairs)
        reply = self._call("stat", path, pairs, lambda: self._client.head_object(**params))
        return Object(
            path=path,
            mode=Mode.READ,
            size=int(reply.get("ContentLength", 0)),
            etag=_etag(reply),
            content_type=reply.get("ContentType"),
            system=_system(reply),
        )

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        key = self._key(path, "delete")

        def remove() -> None:
            from botocore.exceptions import ClientError

            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) not in _NOT_FOUND:  # a service that 404s a missing key: still idempotent
                    raise

        self._call("delete", path, pairs, remove)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        _check_path(prefix.rstrip("/"), allow_empty=True, op="list", driver=self.name)
        full = self.key_prefix + prefix
        pages = self._call(
            "list",
            prefix,
            pairs,
            lambda: iter(
                self._client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=full, PaginationConfig=self._paging
                )
            ),
        )
        while True:
            page = self._call("list", prefix, pairs, lambda: next(pages, None))
            if page is None:
                return
            for item in page.get("Contents", ()):
                key = item["Key"]
                if not key.startswith(self.key_prefix):  # never report (or invite touching) a foreign key
                    continue
                yield Object(
                    path=key[len(self.key_prefix) :],
                    mode=Mode.READ,
                    size=int(item.get("Size", 0)),
                    etag=str(item.get("ETag", "")).strip('"') or None,
                )

    # -- helpers --------------------------------------------------------------------------------

    def check_access(self) -> None:
        """Fail fast with one line when the bucket is missing or the credentials are refused."""
        where = f"bucket {self.bucket!r}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        try:
            self._call("stat", "", {}, lambda: self._client.head_bucket(Bucket=self.bucket))
        except errors.PermissionDenied:
            raise DriverError(f"s3: the credentials were refused for {where} (check AWS_* or the profile)") from None
        except errors.ObjectNotExist:
            raise DriverError(f"s3: {where} does not exist") from None
        except errors.StorageError as exc:
            raise DriverError(f"s3: cannot use {where}: {type(exc).__name__}: {exc.message}") from None

    def _key(self, path: str, op: str) -> str:
        _check_path(path, allow_empty=False, op=op, driver=self.name)
        return self.key_prefix + path

    def _params(self, op: str, path: str, pairs: dict[str, Any]) -> dict[str, Any]:
        """Bucket, key, and the SSE-C headers (key and its MD5 passed explicitly: boto3 trap)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(path, op)}
        key = sse.customer_key(pairs, op, path, self.name)
        if key is not None:
            params["SSECustomerAlgorithm"] = "AES256"
            params["SSECustomerKey"] = base64.b64encode(key).decode()
            params["SSECustomerKeyMD5"] = sse.key_md5(key)
        return params

    def _call(self, op: str, path: str, pairs: dict[str, Any], fn: Callable[[], Any]) -> Any:
        """Run one SDK call; every failure leaves as a taxonomy error with the SDK's as its cause."""
        try:
            return fn()
        except errors.StorageError:
            raise
        except Exception as exc:
            raise classify(exc, op=op, path=path, driver=self.name, secrets=self._secrets(pairs)) from exc

    def _secrets(self, pairs: dict[str, Any]) -> list[str]:
        found = list(self._credentials)
        key = pairs.get("server_side_encryption_customer_key")
        if isinstance(key, bytes | bytearray) and key:
            found += [base64.b64encode(key).decode(), bytes(key).hex(), bytes(key).decode("latin-1")]
        return found


def classify(
    exc: BaseException, *, op: str, path: str | None, driver: str, secrets: list[str] | None = None
) -> errors.StorageError:
    """The taxonomy error for an SDK or transport failure; its message never carries a secret."""
    import urllib3.exceptions
    from botocore import exceptions as bx

    context = {"op": op, "path": path, "driver": driver}
    if isinstance(exc, bx.ClientError):
        code, status = _code(exc), _status(exc)
        message = exc.response.get("Error", {}).get("Message") or ""
        label = f"HTTP {status}" if code in ("", str(status)) else f"{code} (HTTP {status})"
        text = _redact(label + (f": {message}" if message and message != code else ""), secrets)
        if code in _NOT_FOUND:
            return errors.ObjectNotExist(text, **context)
        if code in _DENIED or status == 403:
            return errors.PermissionDenied(text, **context)
        if code in _THROTTLED or status in (429, 503):
            return errors.RequestThrottled(text, retry_after=_retry_after(exc), **context)
        if code in _INTERNAL or (status >= 500 and status != 501):
            return errors.ServiceInternal(text, **context)
        return errors.Unexpected(text, **context)
    network = (
        bx.HTTPClientError,  # connection closed or reset, read timeout, broken response stream
        bx.ConnectionError,  # refused, connect timeout, TLS, proxy
        bx.IncompleteReadError,
        urllib3.exceptions.HTTPError,
        ConnectionError,
        TimeoutError,
    )
    if isinstance(exc, network):
        return errors.NetworkError(f"{type(exc).__name__}: {_redact(str(exc), secrets)}", **context)
    if isinstance(exc, bx.ParamValidationError):
        # Its report quotes the offending values, which may be secrets: name the class only.
        return errors.Unexpected("request parameters refused by the SDK", **context)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return errors.Unexpected("no usable AWS credentials in the standard chain", **context)
    return errors.Unexpected(f"{type(exc).__name__}: {_redact(str(exc), secrets)}", **context)


def _check_path(path: str, *, allow_empty: bool, op: str | None = None, driver: str = "s3") -> None:
    """Refuse a path that could name a key outside the prefix (absolute, '.', '..' or empty segments)."""
    if path == "" and allow_empty:
        return
    if not isinstance(path, str) or path.startswith("/") or any(s in ("", ".", "..") for s in path.split("/")):
        raise errors.RestrictionDissatisfied(
            "path must be relative and '/'-separated, without empty, '.' or '..' segments",
            op=op,
            path=path if isinstance(path, str) else None,
            driver=driver,
        )


def _span(pairs: dict[str, Any], path: str, driver: str) -> tuple[int, int | None]:
    offset, size = int(pairs.get("offset", 0) or 0), pairs.get("size")
    size = None if size is None else int(size)
    if offset < 0 or (size is not None and size < 0):
        raise errors.RestrictionDissatisfied(
            "offset and size must not be negative", op="read", path=path, driver=driver
        )
    return offset, size


def _managed(system: dict[str, Any]) -> dict[str, Any]:
    """put_object parameters for validated SSE-S3 / SSE-KMS pairs."""
    names = {gsp: field for field, gsp in _SSE_FIELDS.items()}
    params = {names[k]: v for k, v in system.items() if k in names}
    if "BucketKeyEnabled" in params:
        params["BucketKeyEnabled"] = bool(params["BucketKeyEnabled"])
    return params


def _system(reply: dict[str, Any]) -> dict[str, Any]:
    """The encryption state the service reported, under GSP names; only what it reported."""
    return {gsp: reply[field] for field, gsp in _SSE_FIELDS.items() if reply.get(field) is not None}


def _etag(reply: dict[str, Any]) -> str | None:
    return str(reply.get("ETag", "")).strip('"') or None


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _retry_after(exc: Any) -> float | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        return float(headers["retry-after"])
    except (KeyError, TypeError, ValueError):
        return None


def _redact(text: str, secrets: list[str] | None) -> str:
    for secret in sorted(filter(None, secrets or ()), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    return text


def _credential_strings(session: Any) -> list[str]:
    """The session's access key, secret and token, kept only to scrub them from messages."""
    try:
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
    except Exception:  # noqa: BLE001 - a chain that cannot resolve yet has nothing to scrub
        return []
    if frozen is None:
        return []
    return [s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s]
