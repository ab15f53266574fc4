"""``gspc drivers``: what a driver declares, which backends it binds to, and which bundled targets can run here."""

from __future__ import annotations

from collections.abc import Iterator

from conformance import backends
from conformance.driver import DriverError, describe
from conformance.naming import declared_at
from conformance.run import RunError, parse_targets
from conformance.targets import (
    Target,
    TargetUnavailable,
    driver_class,
    driver_names,
    load_driver_class,
    open_target,
    unavailable,
)

#: How a target on a backend that needs a location is written, and what it then runs on.
PLACES = {backends.REMOTE: ("https://HOST:PORT", "runs on the endpoint given"),
          backends.LOCAL: ("/ABSOLUTE/DIR", "runs in the folder given")}  # fmt: skip


def bundled_targets() -> Iterator[tuple[str, str]]:
    """Every target the installed drivers offer, each with whether it can run here and, if not, why."""
    for name in sorted(driver_names(), key=_bundled_order):
        try:
            cls = load_driver_class(name)
        except DriverError as exc:
            yield name, f"cannot run here: {exc}"
            continue
        service = getattr(cls, "service", None)
        defaults = list(getattr(cls, "default_backends", (None,)))
        # the bare name already stands for the service's default backend when it is a default target
        known = backends.known(service) if service else []
        others = [b for b in known if b not in defaults and not (None in defaults and _default(service, b))]
        for backend in defaults + others:
            if backend in PLACES:
                yield f"{name}@{PLACES[backend][0]}", PLACES[backend][1]
                continue
            why = _why_not(Target(name, backend))
            yield Target(name, backend).name, "can run here" if why is None else f"cannot run here: {why}"


def describe_target(name: str, options: list[str]) -> list[str]:
    """Lines about one target or driver: its class and file, service and backends, declaration, and whether it runs."""
    try:
        (target,) = parse_targets([name], options)
    except RunError as exc:
        raise DriverError(str(exc)) from None
    cls = driver_class(target)
    service = getattr(cls, "service", None)
    lines = [f"{target.name}  ({cls.__module__}:{cls.__qualname__}, {declared_at(cls)})"]
    if service:
        lines.append(f"  service {service}; backends: {', '.join(backends.known(service)) or 'none installed'}")
    else:
        lines.append("  no service: built from its options alone, so it has no backends")
    why = _why_not(target)
    if why:
        return [*lines, f"  cannot run here: {why}"]
    try:
        opened = open_target(target)
    except (TargetUnavailable, DriverError) as exc:
        return [*lines, f"  cannot run here: {exc}"]
    try:
        lines += ["  can run here; declares:", *(f"    {line}" for line in describe(opened.capabilities))]
    finally:
        opened.close()
    return lines


def _why_not(target: Target) -> str | None:
    try:
        return unavailable(target)
    except DriverError as exc:
        return str(exc)


def _default(service: str, backend: str) -> bool:
    """Whether a backend is the one a driver gets without ``@backend`` (``fs`` is ``fs`` on a temporary folder)."""
    try:
        return bool(getattr(backends.load(f"{service}.{backend}"), "default", False))
    except backends.BackendError:
        return False


def _bundled_order(name: str) -> tuple[int, str]:
    order = ("memory", "fs", "s3", "dropbox")
    return (order.index(name) if name in order else len(order), name)
