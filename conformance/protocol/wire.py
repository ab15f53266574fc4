"""The driver protocol's values on the wire: JSON lines, base64 bytes, binary frames, Objects, errors and declarations.

Both ends share this module: the client the harness uses (``client.py``) and ``serve()`` for Python
drivers (``server.py``). ``docs/protocol.md`` and ``specs/schema/protocol.schema.json`` describe the
same vocabulary for drivers in other languages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from conformance import errors
from conformance.driver import OPERATIONS, Capabilities, Mode, Object
from conformance.redact import secret_name

VERSION = 1
#: The binary frames this end speaks: offered in the start, accepted in its answer (``docs/protocol.md``).
FRAMES = 1
FRAME = "$bytes"  # a payload field {"$bytes": N}: N raw bytes and a newline follow its line
MAX_FRAME = 256 * 1024 * 1024  # the longest frame either end takes, as the longest line the harness reads
#: Requests besides the operations: the handshake and the goodbye.
START, STOP = "start", "stop"
#: Error class a driver answers a request it cannot parse with (it is not a storage failure).
PROTOCOL_ERROR = "ProtocolError"
#: Attribute names the taxonomy constructors take; any other attribute is set on the error as given.
RESERVED = frozenset({"message", "op", "path", "driver", "retryable", "retry_after", "args"})


class WireError(Exception):
    """A line or value that is not the protocol; the message says what was wrong."""


def dumps(message: Mapping[str, Any], field: str | None = None, payload: bytes = b"") -> bytes:
    """One protocol line: compact JSON (bytes as ``{"base64": ...}``), ``field`` set to ``payload`` in base64.

    The payload is spliced in as base64 text (which JSON needs no escape for), so megabytes skip the encoder.
    """
    head = json.dumps(message, separators=(",", ":"), default=_bytes, ensure_ascii=False).encode()
    if field is None:
        return head + b"\n"
    return b"".join((head[:-1], b',"', field.encode(), b'":"', base64.b64encode(payload), b'"}\n'))


def framed(message: Mapping[str, Any], field: str, payload: bytes) -> tuple[bytes, bytes, bytes]:
    """A line with ``field`` set to a frame marker, then the payload and its newline: what goes on the stream."""
    return dumps({**message, field: {FRAME: len(payload)}}), payload, b"\n"


def frame_size(item: Any) -> int | None:
    """N when ``item`` is a frame marker ``{"$bytes": N}``, None when it is no marker; WireError for a bad length."""
    if not isinstance(item, dict) or FRAME not in item:
        return None
    size = item[FRAME]
    if len(item) != 1 or not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FRAME:
        raise WireError(f'a frame\'s marker must be {{"$bytes": N}} alone, N an integer from 0 to {MAX_FRAME}')
    return size


def loads(line: bytes) -> dict[str, Any]:
    """A protocol line as a JSON object; WireError if it is not one."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not a JSON line ({exc}): {shown(line)}") from None
    if not isinstance(message, dict):
        raise WireError(f"a line must be a JSON object, not {type(message).__name__}: {shown(line)}")
    return message


def shown(line: bytes, limit: int = 200) -> str:
    """The start of a line as printable text, for messages about it."""
    head = repr(line[:limit])
    return head + (f" ... ({len(line)} bytes)" if len(line) > limit else "")


def _bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mode):
        return mode_names(value)
    raise TypeError(f"{type(value).__name__} cannot travel in the driver protocol")


def data(value: Any, what: str) -> bytes:
    """Bytes from a frame (bytes already), base64 text (a payload) or ``{"base64": ...}`` (a value); else WireError."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict) and set(value) == {"base64"}:
        value = value["base64"]
    if not isinstance(value, str):
        raise WireError(f"{what} must be base64 text, not {type(value).__name__}")
    try:  # straight from the str: b64decode would copy megabytes into bytes first
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError(f"{what} is not base64: {exc}") from None


def value(item: Any) -> Any:
    """A pair, option, attribute or metadata value from the wire: ``{"base64": ...}`` becomes bytes."""
    if isinstance(item, dict):
        if set(item) == {"base64"}:
            return data(item, "a {base64} value")
        return {k: value(v) for k, v in item.items()}
    if isinstance(item, list):
        return [value(v) for v in item]
    return item


def secrets(values: Mapping[str, Any]) -> list[str]:
    """Names of the pairs or options whose values are secret: the driver must never log them."""
    return sorted(name for name in values if secret_name(name))


# --- modes and Objects ----------------------------------------------------------------------------


def mode_names(mode: Mode) -> list[str]:
    """A mode as its GSP-25 bit names, lowest bit first."""
    return [m.name.lower() for m in Mode if m in mode]


def mode(names: Any, what: str = "mode") -> Mode:
    """A Mode from a list of bit names; WireError for anything else."""
    if not isinstance(names, list):
        raise WireError(f"{what} must be a list of mode names, not {type(names).__name__}")
    found = Mode(0)
    for name in names:
        if not isinstance(name, str) or name.upper() not in Mode.__members__:
            raise WireError(f"{what}: unknown mode name {name!r} (known: {', '.join(mode_names(Mode(127)))})")
        found |= Mode[name.upper()]
    return found


def object_json(obj: Object) -> dict[str, Any]:
    """An Object as the protocol sends it; its handle travels as the driver gave it."""
    return {
        "path": obj.path,
        "mode": mode_names(Mode(obj.mode)),
        "size": obj.size,
        "append_offset": obj.append_offset,
        "etag": obj.etag,
        "content_type": obj.content_type,
        "system": obj.system,
        "handle": obj.handle,
    }


def object_from(item: Any, what: str = "an Object") -> Object:
    """An Object from the wire; WireError naming the first field that is wrong."""
    if not isinstance(item, dict):
        raise WireError(f"{what} must be a JSON object, not {type(item).__name__}")
    if not isinstance(item.get("path"), str):
        raise WireError(f"{what} needs a string path")
    for name in ("size", "append_offset"):
        number = item.get(name)
        if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
            raise WireError(f"{what}: {name} must be an integer or null, not {type(number).__name__}")
    for name in ("etag", "content_type"):
        if item.get(name) is not None and not isinstance(item[name], str):
            raise WireError(f"{what}: {name} must be a string or null")
    system = item.get("system") or {}
    if not isinstance(system, dict):
        raise WireError(f"{what}: system must be a JSON object")
    return Object(
        path=item["path"],
        mode=mode(item.get("mode"), f"{what}: mode"),
        size=item.get("size"),
        append_offset=item.get("append_offset"),
        etag=item.get("etag"),
        content_type=item.get("content_type"),
        system=value(system),
        handle=item.get("handle"),
    )


# --- declarations ---------------------------------------------------------------------------------


def capabilities_json(caps: Capabilities) -> dict[str, Any]:
    """A declaration in the protocol's vocabulary (the same names as Capabilities)."""
    return {
        "operations": [op for op in OPERATIONS if op in caps.operations] + sorted(caps.operations - set(OPERATIONS)),
        "pairs": {op: sorted(names) for op, names in sorted(caps.pairs.items())},
        "limits": dict(sorted(caps.limits.items())),
        "features": sorted(caps.features),
    }


def capabilities_from(item: Any) -> Capabilities:
    """A Capabilities from the handshake; WireError if a field has the wrong shape (meaning is checked later)."""
    if not isinstance(item, dict):
        raise WireError("capabilities must be a JSON object")
    operations, pairs = item.get("operations") or [], item.get("pairs") or {}
    limits, features = item.get("limits") or {}, item.get("features") or []
    if not _strings(operations) or not _strings(features):
        raise WireError("capabilities: operations and features must be lists of strings")
    if not isinstance(pairs, dict) or not all(_strings(names) for names in pairs.values()):
        raise WireError("capabilities: pairs must map each operation to a list of pair names")
    if not isinstance(limits, dict):
        raise WireError("capabilities: limits must map names to integers")
    return Capabilities(operations=frozenset(operations), pairs=pairs, limits=limits, features=frozenset(features))


def _strings(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, str) for i in items)


# --- errors ---------------------------------------------------------------------------------------


def error_json(exc: BaseException) -> dict[str, Any]:
    """An exception as the protocol's error: its taxonomy class (or its own name if it has none) and context."""
    cls = next((c for c in type(exc).__mro__ if errors.ERRORS.get(c.__name__) is c), None)
    if cls is None:  # a raw exception: its own class name, which the client reports as untyped
        return {"class": type(exc).__name__, "message": str(exc)}
    found: dict[str, Any] = {
        "class": cls.__name__,
        "message": getattr(exc, "message", str(exc)),
        "op": getattr(exc, "op", None),
        "path": getattr(exc, "path", None),
        "retryable": getattr(exc, "retryable", False),
    }
    if getattr(exc, "retry_after", None) is not None:
        found["retry_after"] = exc.retry_after
    attributes = {}
    for name, item in vars(exc).items():
        if name in RESERVED or name.startswith("_"):
            continue
        attributes[name] = mode_names(item) if isinstance(item, Mode) else item
    if attributes:
        found["attributes"] = attributes
    return found


def error_from(item: Any, driver: str) -> errors.StorageError | None:
    """The taxonomy error an answer carries, or None when its class is not in the taxonomy; WireError if malformed."""
    if not isinstance(item, dict) or not isinstance(item.get("class"), str):
        raise WireError("an error must be a JSON object with a string 'class'")
    cls = errors.ERRORS.get(item["class"])
    if cls is None:
        return None
    message, op, path = item.get("message", ""), item.get("op"), item.get("path")
    if not isinstance(message, str) or not all(v is None or isinstance(v, str) for v in (op, path)):
        raise WireError("an error's message, op and path must be strings (op and path may be null)")
    attributes = item.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(k, str) and k.isidentifier() for k in attributes):
        raise WireError("an error's attributes must be a JSON object keyed by identifiers")
    keywords = {"op": op, "path": path, "driver": driver}
    if cls is errors.ObjectModeInvalid:
        for name in ("expected", "actual"):
            if name in attributes:
                keywords[name] = mode(attributes[name], f"error attribute {name}")
    elif cls is errors.PairUnsupported:
        keywords["pair"] = attributes.get("pair")
    elif cls is errors.PairRequired:
        keywords["keys"] = attributes.get("keys")
    if issubclass(cls, errors.RequestThrottled):
        keywords["retry_after"] = _seconds(item.get("retry_after"))
    error = cls(message, **keywords)
    for name, item_value in attributes.items():
        if name not in RESERVED and name not in keywords and not name.startswith("_"):
            setattr(error, name, value(item_value))
    if isinstance(item.get("retryable"), bool) and item["retryable"] != cls.retryable:
        error.retryable = item["retryable"]  # the driver's word is what the specs judge
    return error


def _seconds(item: Any) -> float | None:
    if item is None:
        return None
    if not isinstance(item, int | float) or isinstance(item, bool) or item < 0:
        raise WireError("retry_after must be a number of seconds or null")
    return float(item)
