"""Backends: the services a target runs against, found by entry point, started and stopped by the harness.

A backend is registered in the entry-point group ``gsp_conformance.backends`` as ``service.name``
(``s3.moto-server = "pkg.module:Class"``). A target ``driver@name`` binds a driver declaring
``service = "s3"`` to ``s3.name``; ``driver@https://…`` to ``s3.remote`` and ``driver@/dir`` to
``dir.local``, each built with that location; a target naming no backend binds to the service's
backend marked ``default``. This package imports only the standard library: a backend imports
the SDK it serves when it starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

ENTRY_POINT_GROUP = "gsp_conformance.backends"
REMOTE, LOCAL = "remote", "local"  # the backends a URL or an absolute path names
#: The most objects one listing page holds on the services the harness starts (moto, ministack, the
#: Dropbox emulator), whatever a driver asks: any driver must follow the pages to list a case's objects.
LIST_PAGE_SIZE = 7


class BackendError(Exception):
    """A backend failed to start or was misconfigured; the message says why, in one line."""


class FaultInjector(Protocol):
    """What a fault step talks to: the proxy in front of a backend, or a test's simulation."""

    def inject(self, kind: str, **options: Any) -> None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class Endpoint:
    """Where a started backend answers: the driver options that reach it, and what a fault proxy needs."""

    options: dict[str, Any] = field(default_factory=dict)  # constructor keywords: bucket, endpoint_url, token...
    upstream: tuple[str, int] | None = None  # a loopback HTTP(S) server a fault proxy may stand in front of
    address: dict[str, str] = field(default_factory=dict)  # options naming the server, "{address}" = host:port
    tls_cert: str | None = None  # PEM with the upstream's key and chain: a proxy in front answers TLS with it
    ca_file: str | None = None  # the CA the upstream's certificate chains to
    error_dialect: str | None = None  # "module:function" (status, retry_after) -> (body, type); None: S3's XML
    env: dict[str, str] = field(default_factory=dict)  # variables the driver's process needs, set only if unset
    faults: FaultInjector | None = field(default=None, compare=False)  # a backend that simulates faults itself
    list_page_size: int | None = None  # the most objects the service puts in one listing page, when known

    def to_json(self) -> dict[str, Any]:
        """The endpoint as JSON, for another process of the run; a simulated injector cannot travel."""
        if self.faults is not None:
            raise BackendError("an endpoint with an in-process fault injector cannot be shared")
        data = asdict(self)
        del data["faults"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Endpoint:
        """The endpoint another process of the run wrote with to_json()."""
        upstream = data.get("upstream")
        return cls(**{**data, "upstream": tuple(upstream) if upstream else None})


class Backend(Protocol):
    """A service a driver binds to; built with its location (a URL, a path) or None, started by the harness."""

    service: ClassVar[str]  # "s3", "dropbox", "dir": a driver declaring the same service binds to it
    default: ClassVar[bool]  # the backend of a target that names none
    per_process: ClassVar[bool]  # its endpoint works only in the process that started it (moto's mock)

    def unavailable(self) -> str | None:
        """Why it cannot run here (a missing package or credential), in one line, or None."""

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        """Start (or reach) the service; ``options`` are the target's; raise BackendError."""

    def close(self) -> None:
        """Stop what start() started; safe to call twice."""


def registered() -> dict[str, str]:
    """Installed backends by ``service.name``, with their ``module:Class`` reference."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known(service: str | None = None) -> list[str]:
    """Backend names a target can use (``service.name``, or ``name`` for one service), sorted."""
    names = sorted(registered())
    if service is None:
        return names
    return [n.partition(".")[2] for n in names if n.partition(".")[0] == service]


def load(key: str) -> type[Backend]:
    """The backend class registered as ``service.name``; BackendError if it is not installed."""
    ref = registered().get(key)
    if ref is None:
        raise BackendError(f"no backend {key!r} is installed")
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"backend {key!r} ({ref}) cannot be loaded: {exc}") from None


def find(service: str, name: str | None) -> tuple[type[Backend], str | None] | None:
    """The backend class for ``@name`` on a service and the location it is built with; None if none applies."""
    if name is None:
        for key in registered():
            if key.partition(".")[0] == service and getattr(cls := load(key), "default", False):
                return cls, None
        return None
    if name.startswith(("http://", "https://")):
        return load(f"{service}.{REMOTE}"), name
    if name.startswith("/"):
        return load(f"{service}.{LOCAL}"), name
    key = f"{service}.{name}"
    return (load(key), None) if key in registered() else None
