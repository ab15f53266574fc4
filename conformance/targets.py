"""Targets: a driver bound to a backend, named ``driver`` or ``driver@backend``; the harness opens them.

A driver is named by entry point (group ``gsp_conformance.drivers``), by ``module:Class``, by
``path/file.py:Class`` or ``path/file.py`` (its one driver class; see ``conformance.naming``), or by
``exec:COMMAND`` for a process speaking the driver protocol (``conformance.protocol``). A
driver class that declares ``service = "s3"`` (or ``"dropbox"``, ``"dir"``) binds to that service's
backends (see ``conformance.backends``): the harness starts the backend, puts a fault proxy in front
of a loopback HTTP(S) upstream, and builds the driver with the endpoint's options, then the user's,
as constructor keywords. ``default_backends`` names the bundled targets ``gspc run`` picks by
default. A driver may define ``check_access()``, raising DriverError, to fail fast on refused
credentials. A driver without ``service`` is built as ``cls(**options)``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from conformance import backends, naming
from conformance.backends import Backend, BackendError, Endpoint, FaultInjector
from conformance.driver import Capabilities, DriverError, check_driver

ENTRY_POINT_GROUP = "gsp_conformance.drivers"
EXEC = "exec:"  # a driver in another process, in any language: the rest of the name is its command
ENDPOINTS_POLL = 0.01  # seconds between looks at an endpoints file whose backends are still starting


class TargetUnavailable(Exception):
    """The target cannot run here (missing package, missing credentials); carries the reason."""


@dataclass(frozen=True)
class Target:
    """A driver reference, an optional backend, and options for the driver."""

    driver: str
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return f"{self.driver}@{self.backend}" if self.backend else self.driver

    @classmethod
    def parse(cls, text: str, options: dict[str, Any] | None = None) -> Target:
        driver, _, backend = text.partition("@")
        if not driver:
            raise DriverError(f"target {text!r}: no driver named before '@'")
        return cls(driver, backend or None, dict(options or {}))


@dataclass
class OpenTarget:
    """An open target: the driver, its validated declaration, the fault injector in front of it, if any."""

    target: Target
    driver: Any
    capabilities: Capabilities
    faults: FaultInjector | None
    list_page_size: int | None = None  # the endpoint's: the most objects its service lists in one page
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close the driver, then the proxy, then the backend this process started; each failure is contained."""
        closers, self.closers = self.closers, []
        for close in closers:
            with contextlib.suppress(Exception):  # one failed stop must not leak the rest
                close()


def driver_names() -> dict[str, str]:
    """Installed drivers by entry-point name, with their ``module:Class`` reference."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_driver_class(ref: str) -> type:
    """The driver class for an entry-point name, ``module:Class``, ``path/file.py[:Class]`` or ``exec:COMMAND``."""
    if ref.startswith(EXEC):
        from conformance.protocol import exec_driver  # lazily: only exec targets need the protocol

        return exec_driver(ref.removeprefix(EXEC))
    names = driver_names()
    return naming.load_class(ref, names.get(ref, ref), names)


def driver_class(target: Target) -> type:
    """The driver class of a target; an ``exec:`` driver learns its service from the target's backend and options."""
    if target.driver.startswith(EXEC):
        from conformance.protocol import exec_driver

        return exec_driver(target.driver.removeprefix(EXEC), target.backend, target.options)
    return load_driver_class(target.driver)


def backend_of(target: Target, cls: type | None = None) -> Backend | None:
    """A new, unstarted backend for a target (None: the driver runs on its options alone); DriverError if unknown."""
    cls = cls or driver_class(target)
    service = getattr(cls, "service", None)
    if service is None:
        if target.backend:
            raise DriverError(
                f"target {target.name}: driver {target.driver!r} declares no service, so it has no backends; "
                f"give it a service (s3, dropbox, dir) or drop '@{target.backend}' (known backends: "
                f"{', '.join(backends.known()) or 'none'})"
            )
        return None
    try:
        found = backends.find(service, target.backend)
    except BackendError as exc:
        raise DriverError(f"target {target.name}: {exc}") from None
    if found is None and target.backend:
        raise DriverError(
            f"target {target.name}: no {service} backend {target.backend!r}"
            f"{naming.suggest(target.backend, backends.known(service))} (known backends: "
            f"{', '.join(backends.known(service)) or 'none'}, or a URL or an absolute path)"
        )
    if found:
        _reachable(target, found[0])
    return found[0](found[1]) if found else None


def _reachable(target: Target, backend: type) -> None:
    """Refuse an exec driver on a backend that lives inside the harness's process (moto's mock), out of its reach."""
    instead = getattr(backend, "out_of_process", None)
    if instead and target.driver.startswith(EXEC):
        raise DriverError(f"target {target.name}: @{target.backend} lives inside the harness's process, which a driver "
                          f"in another process cannot reach; use @{instead}")  # fmt: skip


def unavailable(target: Target) -> str | None:
    """Why the target's backend cannot run here, or None."""
    backend = backend_of(target)
    return backend.unavailable() if backend is not None else None


def start_backend(target: Target, backend: Backend) -> Endpoint:
    """Start a target's backend; TargetUnavailable or DriverError, each one line naming the target."""
    reason = backend.unavailable()
    if reason:
        raise TargetUnavailable(f"{target.name}: {reason}")
    try:
        return backend.start(dict(target.options))
    except BackendError as exc:
        raise DriverError(f"target {target.name}: {exc}") from None


def open_target(
    target: Target,
    endpoint: Endpoint | None = None,
    learn: Callable[[Mapping[str, Any]], None] | None = None,
) -> OpenTarget:
    """Bind a target's driver to ``endpoint`` (a backend started elsewhere) or to a backend started here.

    ``learn`` is given the endpoint's options (tokens) before any driver sees them.
    Raises TargetUnavailable or DriverError.
    """
    cls = driver_class(target)
    opened = OpenTarget(target, None, Capabilities(operations=frozenset()), None)
    try:
        if endpoint is None:
            backend = backend_of(target, cls)
            if backend is not None:
                opened.closers.append(backend.close)
                endpoint = start_backend(target, backend)
        endpoint = endpoint or Endpoint()
        opened.list_page_size = endpoint.list_page_size
        if learn is not None:
            learn(endpoint.options)
        for name, value in endpoint.env.items():
            os.environ.setdefault(name, value)  # the user's own settings win
        options = endpoint.options | target.options
        proxy = _proxy(endpoint)
        if proxy is not None:
            opened.closers.insert(0, proxy.close)
            address = f"127.0.0.1:{proxy.port}"
            options |= {name: value.replace("{address}", address) for name, value in endpoint.address.items()}
        opened.faults = proxy or endpoint.faults
        opened.driver = _build(cls, target, options)
        opened.closers.insert(0, lambda: close_driver(opened.driver))
        opened.capabilities = _check(opened.driver, target)
    except BaseException:
        opened.close()
        raise
    return opened


class SharedBackends:
    """The backends of a run's targets, started once by the process that leads the run and stopped at its end.

    Every process of the run (xdist workers, restarted children) binds to their endpoints, each with a
    fault proxy of its own. A backend that works only in-process (moto's mock), or has nothing to start,
    is left to each process, as is one that cannot run here (each process then reports it not run).
    """

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self._backends: list[Backend] = []
        self._starting: threading.Thread | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._path: Path | None = None  # where write_to said the endpoints go
        self._outcome: dict[str, Any] | None = None  # the endpoints, or why a backend did not start

    def start(self, targets: list[Target], learn: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        """Start each target's shareable backend; on DriverError the ones already started are stopped."""
        try:
            for target in targets:
                backend = backend_of(target)
                if backend is None or backend.per_process or backend.unavailable():
                    continue
                self._backends.append(backend)
                self.endpoints[target.name] = start_backend(target, backend)
                if learn is not None:
                    learn(self.endpoints[target.name].options)
        except BaseException:
            self._stop()
            raise

    def start_in_background(
        self, targets: list[Target], learn: Callable[[Mapping[str, Any]], None] | None = None
    ) -> None:
        """Start the backends in a thread, while the run sets itself up; ``write_to`` says where they are."""
        self._starting = threading.Thread(
            target=self._start_and_tell, args=(targets, learn), name="gspc-backends-start", daemon=True
        )
        self._starting.start()

    def write_to(self, path: Path) -> None:
        """Write the endpoints to ``path`` once the backends are up, or why one failed; until then, "pending".

        A child of the run reading the file while it is pending waits (read_endpoints): the child starts while
        the backends do.
        """
        with self._lock:
            self._path = path
            _write_private(path, self._outcome or {"pending": True})

    @property
    def starting(self) -> bool:
        """The backends are still being started by start_in_background."""
        return self._starting is not None and self._starting.is_alive()

    def _start_and_tell(self, targets: list[Target], learn: Callable[[Mapping[str, Any]], None] | None) -> None:
        try:
            self.start(targets, learn)
        except Exception as exc:  # said by the child that reads the file, as its refusal
            reason = str(exc) if isinstance(exc, DriverError) else f"starting the backends: {type(exc).__name__}: {exc}"
            outcome: dict[str, Any] = {"error": reason}
        else:
            outcome = {"endpoints": as_json(self.endpoints)}
        with self._lock:
            self._outcome = outcome
            if self._path is not None and not self._closing:  # a stopped run leaves no endpoints (a token) behind
                _write_private(self._path, outcome)

    def close(self, wait: float | None = None) -> None:
        """Stop every backend started here (once start_in_background's thread is done, or ``wait`` seconds are up).

        A failing stop does not keep the others running.
        """
        with self._lock:
            self._closing = True
        if self._starting is not None:
            self._starting.join(wait)
        self._stop()

    def _stop(self) -> None:
        backends_, self._backends = self._backends, []
        for backend in reversed(backends_):
            with contextlib.suppress(Exception):
                backend.close()
        self.endpoints.clear()


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` at once with ``data`` as JSON readable by this user only (an emulator's token is in it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{threading.get_ident()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(temp, path)


def as_json(endpoints: Mapping[str, Endpoint]) -> dict[str, dict[str, Any]]:
    """Endpoints by target name, as JSON for another process of the run."""
    return {name: endpoint.to_json() for name, endpoint in endpoints.items()}


def read_endpoints(data: Mapping[str, Any] | str | Path | None) -> dict[str, Endpoint]:
    """Endpoints by target name, from a file SharedBackends wrote or from as_json's mapping.

    A file whose backends are still starting is waited for while the process starting them lives.
    DriverError if unreadable, or saying why a backend did not start.
    """
    if data is None:
        return {}
    if isinstance(data, str | Path):
        data = _endpoints_file(Path(data))
    try:
        return {str(name): Endpoint.from_json(value) for name, value in data.items()}
    except (AttributeError, TypeError) as exc:
        raise DriverError(f"endpoints: not what SharedBackends writes: {exc}") from None


def _endpoints_file(path: Path) -> Any:
    starter = os.getppid()  # gspc, which starts the backends and runs this process
    while True:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DriverError(f"endpoints file {path}: {type(exc).__name__}: {exc}") from None
        if not isinstance(content, dict):
            raise DriverError(f"endpoints file {path}: not what SharedBackends writes")
        if not content.get("pending"):
            break
        if os.getppid() != starter:
            raise DriverError(f"endpoints file {path}: the process starting the backends is gone")
        time.sleep(ENDPOINTS_POLL)
    if "error" in content:
        raise DriverError(str(content["error"]))
    if not isinstance(content.get("endpoints"), dict):
        raise DriverError(f"endpoints file {path}: not what SharedBackends writes")
    return content["endpoints"]


def close_driver(driver: Any) -> None:
    """Call the driver's close() if it has one."""
    close = getattr(driver, "close", None)
    if callable(close):
        close()


def default_targets() -> list[Target]:
    """Every bundled target whose backend is available here, in entry-point order."""
    found = []
    for name in sorted(driver_names(), key=_bundled_order):
        try:
            cls = load_driver_class(name)
        except DriverError:
            continue
        for backend in getattr(cls, "default_backends", (None,)):
            target = Target(name, backend)
            with contextlib.suppress(DriverError):
                if unavailable(target) is None:
                    found.append(target)
    return found


def _build(cls: type, target: Target, options: dict[str, Any]) -> Any:
    try:
        return cls(**options)
    except TypeError as exc:
        raise DriverError(f"target {target.name}: bad options {sorted(options)}: {exc}") from None
    except (DriverError, TargetUnavailable):
        raise
    except Exception as exc:  # a driver that cannot even start is a configuration problem, not a traceback
        raise DriverError(f"target {target.name}: cannot open: {type(exc).__name__}: {exc}") from None


def _check(driver: Any, target: Target) -> Capabilities:
    try:
        caps = check_driver(driver)
    except DriverError as exc:  # name the class as the user gave it, and where it is defined
        label = f"driver {getattr(driver, 'name', type(driver).__name__)!r}: "
        found = str(exc).removeprefix(label)
        raise DriverError(f"driver {target.driver} ({naming.declared_at(type(driver))}): {found}") from None
    check_access = getattr(driver, "check_access", None)
    if callable(check_access):  # refused credentials or a missing bucket: one line now, not a failure per case
        check_access()
    return caps


def _proxy(endpoint: Endpoint) -> Any:
    """A fault proxy in front of the endpoint's loopback upstream (one per process), or None."""
    if endpoint.upstream is None:
        return None
    from conformance.backends.faultproxy import FaultProxy

    server = upstream = None
    if endpoint.tls_cert:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(endpoint.tls_cert)
        upstream = ssl.create_default_context(cafile=endpoint.ca_file)
    dialect = None
    if endpoint.error_dialect:
        module, _, attr = endpoint.error_dialect.partition(":")
        dialect = getattr(importlib.import_module(module), attr)
    host, port = endpoint.upstream
    return FaultProxy(host, port, ssl_context=server, upstream_ssl=upstream, error_document=dialect)


def _bundled_order(name: str) -> tuple[int, str]:
    order = ("memory", "fs", "s3", "dropbox")
    return (order.index(name) if name in order else len(order), name)
