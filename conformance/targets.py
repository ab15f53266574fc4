"""Targets: a driver bound to a backend, named ``driver`` or ``driver@backend``.

A driver is named by entry point (group ``gsp_conformance.drivers``) or by ``module:Class``.
A driver class may offer embedded backends with two class attributes::

    default_backends = ("moto",)                  # bundled targets `gspc run` picks by default
    @classmethod
    def open_backend(cls, backend, options): ...  # returns a ready driver; close() tears it down

and ``backend_unavailable(backend) -> str | None`` to say why a backend cannot run here.
A driver may define ``check_access()``, raising DriverError, to fail fast on refused credentials.
Without ``open_backend`` the driver is built as ``cls(**options)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from conformance.driver import DriverError, check_driver

ENTRY_POINT_GROUP = "gsp_conformance.drivers"


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


def driver_names() -> dict[str, str]:
    """Installed drivers by entry-point name, with their ``module:Class`` reference."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_driver_class(ref: str) -> type:
    """The driver class for an entry-point name or a ``module:Class`` reference."""
    value = driver_names().get(ref, ref)
    module_name, sep, attr = value.partition(":")
    if not sep:
        known = ", ".join(sorted(driver_names())) or "none"
        raise DriverError(f"unknown driver {ref!r} (installed: {known}; or give module:Class)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverError(f"driver {ref!r}: cannot import {module_name}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise DriverError(f"driver {ref!r}: module {module_name} has no {attr}") from None


def open_target(target: Target) -> Any:
    """Build and validate the driver of a target; raise TargetUnavailable or DriverError."""
    cls = load_driver_class(target.driver)
    reason = unavailable(cls, target.backend)
    if reason:
        raise TargetUnavailable(f"{target.name}: {reason}")
    opener = getattr(cls, "open_backend", None)
    try:
        if opener is not None:
            driver = opener(target.backend, dict(target.options))
        elif target.backend:
            raise DriverError(f"target {target.name}: driver {target.driver!r} has no backends")
        else:
            driver = cls(**target.options)
    except TypeError as exc:
        raise DriverError(f"target {target.name}: bad options {sorted(target.options)}: {exc}") from None
    except (DriverError, TargetUnavailable):
        raise
    except Exception as exc:  # a driver that cannot even start is a configuration problem, not a traceback
        raise DriverError(f"target {target.name}: cannot open: {type(exc).__name__}: {exc}") from None
    try:
        check_driver(driver)
        check_access = getattr(driver, "check_access", None)
        if callable(check_access):  # refused credentials or a missing bucket: one line now, not a failure per case
            check_access()
    except DriverError:
        close_driver(driver)
        raise
    return driver


def close_driver(driver: Any) -> None:
    """Call the driver's close() if it has one."""
    close = getattr(driver, "close", None)
    if callable(close):
        close()


def unavailable(cls: type, backend: str | None) -> str | None:
    """Why the backend cannot run here, or None."""
    check = getattr(cls, "backend_unavailable", None)
    return check(backend) if callable(check) else None


def default_targets() -> list[Target]:
    """Every bundled target whose backend is available here, in entry-point order."""
    found = []
    for name in sorted(driver_names(), key=_bundled_order):
        try:
            cls = load_driver_class(name)
        except DriverError:
            continue
        for backend in getattr(cls, "default_backends", (None,)):
            if unavailable(cls, backend) is None:
                found.append(Target(name, backend))
    return found


def _bundled_order(name: str) -> tuple[int, str]:
    order = ("memory", "fs", "s3", "dropbox")
    return (order.index(name) if name in order else len(order), name)
