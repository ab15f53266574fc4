"""Expectations of one step: compare what the driver did with what the spec says, as text."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Mapping
from typing import Any

from conformance.driver import OBJECT_OPERATIONS, Mode, Object
from conformance.engine.payloads import evaluate, parse_size
from conformance.errors import ERRORS, StorageError


class Mismatch(Exception):
    """What was expected and what happened instead."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


def check(
    expect: Mapping[str, Any],
    op: str,
    path: str | None,
    outcome: tuple[Any, BaseException | None],
    prefix: str,
    limits: Mapping[str, int],
) -> str | None:
    """Raise Mismatch unless the outcome meets ``expect``; return the label of the alternative met."""
    if "one_of" in expect:
        misses = []
        for alt in expect["one_of"]:
            try:
                _check_one(alt, op, path, outcome, prefix, limits)
                return alt["label"]
            except Mismatch as miss:
                misses.append(f"{alt['label']}: {miss.expected}")
        raise Mismatch("one of: " + "; ".join(misses), describe(outcome, prefix))
    _check_one(expect, op, path, outcome, prefix, limits)
    return expect.get("label")


def _check_one(expect, op, path, outcome, prefix, limits) -> None:
    result, error = outcome
    wanted = _names(expect.get("error"))
    if wanted:
        if error is None:
            raise Mismatch(f"error {' or '.join(wanted)}", describe(outcome, prefix))
        if not isinstance(error, tuple(ERRORS[n] for n in wanted)):
            raise Mismatch(f"error {' or '.join(wanted)}", describe(outcome, prefix))
        _check_error(expect, error, op, path, outcome, prefix)
        return
    if error is not None:
        refused = _names(expect.get("not_error"))
        if not refused or not isinstance(error, StorageError) or isinstance(error, tuple(ERRORS[n] for n in refused)):
            raise Mismatch(
                "success" if not refused else f"anything but {' or '.join(refused)}",
                describe(outcome, prefix),
            )
        return
    if "bytes" in expect:
        _check_bytes(evaluate(expect["bytes"], limits), result)
    if "size" in expect:
        actual = len(result) if isinstance(result, bytes | bytearray) else getattr(result, "size", None)
        if actual != parse_size(expect["size"], limits):
            raise Mismatch(f"size {parse_size(expect['size'], limits)}", f"size {actual}")
    if "value" in expect and result != parse_size(expect["value"], limits):
        raise Mismatch(f"return value {parse_size(expect['value'], limits)}", f"return value {result!r}")
    if "mode" in expect:
        _check_mode(expect["mode"], result)
    for name, want in expect.get("fields", {}).items():
        got = getattr(result, name, None)
        if name == "path" and isinstance(want, str):
            want = prefix + want
        _match(name, want, got, limits)
    for name, want in expect.get("system", {}).items():
        system = getattr(result, "system", {}) or {}
        _match(f"system.{name}", want, system.get(name), limits)
    if "paths" in expect:
        _check_paths(expect["paths"], result, prefix)


def _check_error(expect, error, op, path, outcome, prefix) -> None:
    if "retryable" in expect and bool(getattr(error, "retryable", False)) != expect["retryable"]:
        raise Mismatch(f"retryable={expect['retryable']}", f"{describe(outcome, prefix)} (retryable={error.retryable})")
    for name, want in expect.get("attrs", {}).items():
        got = getattr(error, name, None)
        _match(f"error.{name}", want, str(got) if isinstance(got, Mode) else got, {})
    if expect.get("envelope"):
        want_path = None if op in OBJECT_OPERATIONS else path
        if error.op != op or error.path != want_path:
            raise Mismatch(
                f"error envelope op={op!r} path={_rel(want_path, prefix)!r}",
                f"op={error.op!r} path={_rel(error.path, prefix)!r}",
            )


def _check_bytes(want: bytes, got: Any) -> None:
    if not isinstance(got, bytes | bytearray):
        raise Mismatch(f"{len(want)} bytes", f"{type(got).__name__}")
    if bytes(got) == want:
        return
    first = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
    raise Mismatch(
        f"{len(want)} bytes sha256 {hashlib.sha256(want).hexdigest()[:12]}",
        f"{len(got)} bytes sha256 {hashlib.sha256(got).hexdigest()[:12]}, first difference at offset {first}",
    )


def _check_mode(want: Mapping[str, list[str]], result: Any) -> None:
    mode = getattr(result, "mode", None)
    if not isinstance(mode, int):
        raise Mismatch("an object with a mode", describe((result, None), ""))
    mode = Mode(mode)
    for name in want.get("has", ()):
        if Mode[name.upper()] not in mode:
            raise Mismatch(f"mode with {name}", f"mode {mode}")
    for name in want.get("lacks", ()):
        if Mode[name.upper()] in mode:
            raise Mismatch(f"mode without {name}", f"mode {mode}")


def _match(name: str, want: Any, got: Any, limits) -> None:
    if isinstance(want, dict) and "present" in want:
        if (got is not None) != want["present"]:
            raise Mismatch(f"{name} {'set' if want['present'] else 'unset'}", f"{name}={got!r}")
        return
    if isinstance(want, dict) and "md5_b64" in want:
        want = base64.b64encode(hashlib.md5(evaluate(want["md5_b64"], limits)).digest()).decode()
    if got != want:
        raise Mismatch(f"{name}={want!r}", f"{name}={got!r}")


def _check_paths(want: Mapping[str, list[str]], result: Any, prefix: str) -> None:
    if not isinstance(result, list):
        raise Mismatch("a listing", type(result).__name__)
    listed = {_rel(getattr(o, "path", None), prefix) for o in result}
    for path in want.get("includes", ()):
        if path not in listed:
            raise Mismatch(f"listing including {path!r}", f"listing {sorted(map(str, listed))[:20]}")
    for path in want.get("excludes", ()):
        if path in listed:
            raise Mismatch(f"listing without {path!r}", f"listing {sorted(map(str, listed))[:20]}")


def describe(outcome: tuple[Any, BaseException | None], prefix: str) -> str:
    """One line for what a step produced: a result summary, or the error class and message."""
    result, error = outcome
    if error is not None:
        if isinstance(error, StorageError):
            return f"{type(error).__name__}: {error}"
        return f"raw {type(error).__module__}.{type(error).__name__} escaped the driver: {error}"
    return f"success ({summary(result, prefix)})"


def summary(result: Any, prefix: str) -> Any:
    """A small JSON-able picture of a result, never its payload."""
    if isinstance(result, bytes | bytearray):
        return {"bytes": len(result), "crc32": f"{zlib.crc32(result):08x}"}  # cheap even for 5 MiB payloads
    if isinstance(result, Object):
        picture = {
            "path": _rel(result.path, prefix),
            "mode": str(Mode(result.mode or 0)),
            "size": result.size,
        }
        if result.append_offset is not None:
            picture["append_offset"] = result.append_offset
        if result.system:
            picture["system"] = {k: str(v) for k, v in result.system.items()}
        return picture
    if isinstance(result, list):
        return {
            "objects": len(result),
            "paths": [_rel(getattr(o, "path", None), prefix) for o in result[:20]],
        }
    if result is None or isinstance(result, int | str | float | bool):
        return result
    return repr(result)[:200]


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _rel(path: str | None, prefix: str) -> str | None:
    if isinstance(path, str) and prefix and path.startswith(prefix):
        return path[len(prefix) :]
    return path
