"""The driver interface: eight operations, a capability declaration, and the Object they exchange.

A driver is any class with a ``name``, ``capabilities()`` and the operations it declares.
:class:`BaseDriver` is an optional base that supplies pair checking, the mode check and
``NotImplemented`` for every operation a driver leaves out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any, Protocol, runtime_checkable

from conformance import errors

#: The operations of the interface, in the order reports show them.
OPERATIONS = (
    "write",
    "read",
    "stat",
    "delete",
    "list",
    "create_append",
    "write_append",
    "commit_append",
)

#: Operations that take an Object rather than a path (their errors carry no path).
OBJECT_OPERATIONS = frozenset({"write_append", "commit_append"})

#: Pair names a driver may declare, with GSP snake_case names.
KNOWN_PAIRS = frozenset(
    {
        "offset",
        "size",
        "content_type",
        "content_md5",
        "content_disposition",
        "storage_class",
        "expected_bucket_owner",
        "server_side_encryption",
        "server_side_encryption_aws_kms_key_id",
        "server_side_encryption_context",
        "server_side_encryption_bucket_key_enabled",
        "server_side_encryption_customer_algorithm",
        "server_side_encryption_customer_key",
    }
)

#: Storage-level limits (GSP-97), in bytes or counts.
KNOWN_LIMITS = frozenset(
    {
        "append_number_maximum",
        "append_size_maximum",
        "append_total_size_maximum",
        "write_size_maximum",
    }
)

#: Optional behaviours a driver may declare.
KNOWN_FEATURES = frozenset({"loose_pair"})


class DriverError(Exception):
    """A driver that cannot be used at all: unknown, unloadable, or declaring what it lacks."""


class Mode(IntFlag):
    """Object mode bits with the GSP-25 values."""

    DIR = 1
    READ = 2
    LINK = 4
    PART = 8
    BLOCK = 16
    PAGE = 32
    APPEND = 64

    def __str__(self) -> str:
        return "|".join(m.name.lower() for m in Mode if m in self) or "none"


@dataclass
class Object:
    """What operations return: a path, its mode, its size, and service metadata."""

    path: str
    mode: Mode = Mode(0)
    size: int | None = None
    append_offset: int | None = None
    etag: str | None = None
    content_type: str | None = None
    system: dict[str, Any] = field(default_factory=dict)
    handle: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Capabilities:
    """What a driver declares: operations, pairs per operation, limits and features."""

    operations: frozenset[str]
    pairs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    limits: Mapping[str, int] = field(default_factory=dict)
    features: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", frozenset(self.operations))
        object.__setattr__(self, "features", frozenset(self.features))
        pairs = {op: frozenset(names) for op, names in dict(self.pairs).items()}
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "limits", dict(self.limits))

    def has(self, token: str) -> bool:
        """Whether a capability token holds: ``op``, ``op.pair``, ``limit.name``, ``feature.name``."""
        head, _, rest = token.partition(".")
        if not rest:
            return head in self.operations
        if head == "limit":
            return rest in self.limits
        if head == "feature":
            return rest in self.features
        return head in self.operations and rest in self.pairs.get(head, ())

    def problems(self) -> list[str]:
        """Everything declared that the interface does not know."""
        found = [f"unknown operation {op!r}" for op in sorted(self.operations - set(OPERATIONS))]
        for op, names in sorted(self.pairs.items()):
            if op not in OPERATIONS:
                found.append(f"pairs declared for unknown operation {op!r}")
            found += [f"unknown pair {name!r} on {op}" for name in sorted(names - KNOWN_PAIRS)]
        for name, value in sorted(self.limits.items()):
            if name not in KNOWN_LIMITS:
                found.append(f"unknown limit {name!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                found.append(f"limit {name} must be a positive integer, not {value!r}")
        found += [f"unknown feature {f!r}" for f in sorted(self.features - KNOWN_FEATURES)]
        return found


@runtime_checkable
class Driver(Protocol):
    """The thin interface every driver implements (operations it does not declare may be absent)."""

    name: str

    def capabilities(self) -> Capabilities: ...
    def write(self, path: str, data: bytes, **pairs: Any) -> Object: ...
    def read(self, path: str, **pairs: Any) -> bytes: ...
    def stat(self, path: str, **pairs: Any) -> Object: ...
    def delete(self, path: str, **pairs: Any) -> None: ...
    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]: ...
    def create_append(self, path: str, **pairs: Any) -> Object: ...
    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int: ...
    def commit_append(self, obj: Object, **pairs: Any) -> None: ...


class BaseDriver:
    """Optional base: undeclared operations raise ``NotImplemented``; helpers for pairs and modes."""

    name = "base"

    def capabilities(self) -> Capabilities:
        raise NotImplementedError(f"{type(self).__name__} must define capabilities()")

    def check_pairs(self, op: str, pairs: Mapping[str, Any], path: str | None = None) -> None:
        """Refuse every pair the operation does not declare (never ignore one silently)."""
        accepted = self.capabilities().pairs.get(op, frozenset())
        for key in pairs:
            if key not in accepted:
                raise errors.PairUnsupported(pair=key, op=op, path=path, driver=self.name)

    def check_append(self, op: str, obj: Object) -> None:
        """Raise ObjectModeInvalid unless the object has the append bit (GSP-61)."""
        if Mode.APPEND not in obj.mode:
            raise errors.ObjectModeInvalid(
                f"object mode invalid, expected append, actual {obj.mode}",
                expected=Mode.APPEND,
                actual=obj.mode,
                op=op,
                driver=self.name,
            )

    def _missing(self, op: str, path: str | None = None) -> errors.NotImplemented:
        return errors.NotImplemented(f"operation {op}: not implemented", op=op, path=path, driver=self.name)

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        raise self._missing("write", path)

    def read(self, path: str, **pairs: Any) -> bytes:
        raise self._missing("read", path)

    def stat(self, path: str, **pairs: Any) -> Object:
        raise self._missing("stat", path)

    def delete(self, path: str, **pairs: Any) -> None:
        raise self._missing("delete", path)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        raise self._missing("list", prefix)

    def create_append(self, path: str, **pairs: Any) -> Object:
        raise self._missing("create_append", path)

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        raise self._missing("write_append")

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        raise self._missing("commit_append")

    def close(self) -> None:
        """Release the backend; the default has nothing to release."""


def implemented_operations(driver: object) -> set[str]:
    """Operations the driver's class really defines (not the BaseDriver stubs)."""
    found = set()
    for op in OPERATIONS:
        method = getattr(type(driver), op, None)
        if callable(method) and method is not getattr(BaseDriver, op):
            found.add(op)
    return found


def check_driver(driver: object) -> Capabilities:
    """Validate a driver instance; raise DriverError with one line naming every problem."""
    label = f"driver {getattr(driver, 'name', type(driver).__name__)!r}"
    if not isinstance(getattr(driver, "name", None), str):
        raise DriverError(f"{label}: has no string attribute 'name'")
    if not callable(getattr(driver, "capabilities", None)):
        raise DriverError(f"{label}: has no capabilities() method")
    try:
        caps = driver.capabilities()
    except Exception as exc:
        raise DriverError(f"{label}: capabilities() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(caps, Capabilities):
        raise DriverError(f"{label}: capabilities() returned {type(caps).__name__}, not Capabilities")
    problems = caps.problems()
    missing = sorted(caps.operations - implemented_operations(driver) - (caps.operations - set(OPERATIONS)))
    problems += [f"declares {op} but does not define it" for op in missing]
    if problems:
        raise DriverError(f"{label}: " + "; ".join(problems))
    return caps


def describe(caps: Capabilities) -> Iterable[str]:
    """Human lines for one declaration: operations with their pairs, limits, features."""
    for op in OPERATIONS:
        if op in caps.operations:
            pairs = ", ".join(sorted(caps.pairs.get(op, ())))
            yield f"{op}" + (f" ({pairs})" if pairs else "")
    for name, value in sorted(caps.limits.items()):
        yield f"limit {name} = {value}"
    for name in sorted(caps.features):
        yield f"feature {name}"
