"""Drivers that leak every secret they can reach, in every form, through every channel a driver has.

The secrets: ``GSPC_TEST_TOKEN`` and ``MYSERVICE_API_KEY`` from the environment, the ``api_key``
and ``secret_access_key`` options, and each SSE-C key a case hands over. The channels: error
messages, exception causes, ``Object.system`` and ``etag``, results of the wrong type and their
reprs, a BaseException, stdout and stderr, and the reason a target cannot run.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

from conformance import errors
from conformance.backends import Endpoint
from conformance.driver import BaseDriver, Capabilities, Mode, Object

SSE_C = frozenset({"server_side_encryption_customer_algorithm", "server_side_encryption_customer_key"})
ENVIRONMENT = ("GSPC_TEST_TOKEN", "MYSERVICE_API_KEY")


def spilled(secret: bytes) -> str:
    """A secret in every form a careless driver or SDK writes it: raw, base64, hex, URL, repr, inside a larger value."""
    b64, url = base64.b64encode(secret).decode(), base64.urlsafe_b64encode(secret).decode()
    basic = base64.b64encode(b"user:" + secret).decode()  # an Authorization: Basic header
    shown = [
        b64,
        b64.rstrip("="),
        url,
        url.rstrip("="),
        secret.hex(),
        secret.hex().upper(),
        quote(secret, safe=""),
        quote_plus(secret),
        repr(secret),
        f"Basic {basic}",
        f"https://svc.example/o?sig={quote(secret)}&x=1",
    ]
    with contextlib.suppress(UnicodeDecodeError):
        shown.insert(0, secret.decode())
    return " | ".join(shown)


class Leak(BaseException):
    """A BaseException a driver raises (the tracker judges it as data)."""


class Receipt:
    """A result of the wrong type whose repr carries the secrets."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Receipt({self.text})"


class Leaky(BaseDriver):
    """An in-memory driver (write, read, stat, delete, list; SSE-C pairs) that plants its secrets everywhere."""

    name = "leaky"

    def __init__(self, api_key: str | None = None, secret_access_key: str | None = None) -> None:
        self._objects: dict[str, tuple[bytes, bytes | None]] = {}
        self._secrets = [os.environ[n].encode() for n in ENVIRONMENT if n in os.environ]
        self._secrets += [s.encode() for s in (api_key, secret_access_key) if s]

    def capabilities(self) -> Capabilities:
        return Capabilities(
            operations=frozenset({"write", "read", "stat", "delete", "list"}),
            pairs={"write": SSE_C, "read": SSE_C | {"offset", "size"}, "stat": SSE_C},
        )

    def _spill(self, pairs: dict[str, Any] | None = None) -> str:
        """Every secret known now, and the SSE-C key handed in, in every form; printed to stdout and stderr too."""
        secrets = list(self._secrets)
        key = (pairs or {}).get("server_side_encryption_customer_key")
        if isinstance(key, bytes):
            secrets.append(key)
        text = " || ".join(spilled(s) for s in secrets)
        print(f"leaky debug: {text}")
        print(f"leaky warning: {text}", file=sys.stderr)
        return text

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        key = pairs.get("server_side_encryption_customer_key")
        self._objects[path] = (bytes(data), key)
        return self._object(path, pairs)

    def read(self, path: str, **pairs: Any) -> bytes:
        self.check_pairs("read", pairs, path)
        data, key = self._found("read", path, pairs)
        if key is not None and pairs.get("server_side_encryption_customer_key") != key:
            raise errors.PermissionDenied(f"key mismatch: {self._spill(pairs)}", op="read", path=path)
        offset = int(pairs.get("offset", 0))
        size = pairs.get("size")
        return data[offset : None if size is None else offset + int(size)]

    def stat(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("stat", pairs, path)
        self._found("stat", path, pairs)
        return self._object(path, pairs)

    def delete(self, path: str, **pairs: Any) -> Any:
        self.check_pairs("delete", pairs, path)
        self._objects.pop(path, None)
        return Receipt(self._spill(pairs))  # delete returns None: a result of the wrong type, reprs and all

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        if prefix.endswith("/missing/"):
            raise Leak(self._spill())
        for path in sorted(p for p in self._objects if p.startswith(prefix)):
            yield self._object(path, {})

    def _found(self, op: str, path: str, pairs: dict[str, Any]) -> tuple[bytes, bytes | None]:
        if path not in self._objects:
            try:
                raise RuntimeError(f"lookup failed with credentials {self._spill(pairs)}")
            except RuntimeError as cause:
                raise errors.ObjectNotExist(
                    f"{op} {path}: not found ({self._spill(pairs)})", op=op, path=path
                ) from cause
        return self._objects[path]

    def _object(self, path: str, pairs: dict[str, Any]) -> Object:
        spill = self._spill(pairs)
        data, _ = self._objects[path]
        return Object(path=path, mode=Mode.READ, size=len(data), etag=spill[:64],
                      system={"request_id": spill, "x-amz-meta-token": spill})  # fmt: skip


class Refusing:
    """The test backend ``leaky.refusing``: it cannot run here, and says why with the token (a not-run reason)."""

    service = "leaky"
    default = True
    per_process = True

    def __init__(self, location: str | None = None) -> None:
        pass

    def unavailable(self) -> str:
        return f"service refused {spilled(os.environ.get('GSPC_TEST_TOKEN', 'no-token-set').encode())}"

    def start(self, options: dict[str, Any]) -> Endpoint:
        raise AssertionError("an unavailable backend is never started")

    def close(self) -> None:
        return None


class LeakyUnavailable(Leaky):
    """A target that cannot run here: its backend ``leaky.refusing`` says why with the token."""

    name = "leaky-unavailable"
    service = "leaky"
