"""Expectations of one step: compare what the driver did with what the spec says, as text."""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import zlib
from collections.abc import Mapping
from typing import Any

from conformance.driver import OBJECT_OPERATIONS, Mode, Object
from conformance.engine.invariants import MODE_BITS, mode_problem
from conformance.engine.payloads import MAX_PAYLOAD, evaluate, parse_size
from conformance.engine.safe import LIMIT, attr, bounded, equal, rep, text, type_name
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
    cap: int = MAX_PAYLOAD,
) -> str | None:
    """Raise Mismatch unless the outcome meets ``expect``; return the label of the alternative met.

    ``cap`` is the most bytes one expected payload may build.
    """
    if "one_of" in expect:
        misses = []
        for alt in expect["one_of"]:
            try:
                _check_one(alt, op, path, outcome, prefix, limits, cap)
                return alt["label"]
            except Mismatch as miss:
                misses.append(f"{alt['label']}: {miss.expected}")
        raise Mismatch("one of: " + "; ".join(misses), describe(outcome, prefix))
    _check_one(expect, op, path, outcome, prefix, limits, cap)
    return expect.get("label")


def _check_one(expect, op, path, outcome, prefix, limits, cap) -> None:
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
        _check_bytes(evaluate(expect["bytes"], limits, cap), result)
    if "size" in expect:
        actual = len(result) if isinstance(result, bytes | bytearray) else attr(result, "size")
        if not equal(actual, parse_size(expect["size"], limits)):
            raise Mismatch(f"size {parse_size(expect['size'], limits)}", f"size {rep(actual)}")
    if "value" in expect and not equal(result, parse_size(expect["value"], limits)):
        raise Mismatch(f"return value {parse_size(expect['value'], limits)}", f"return value {rep(result)}")
    if "mode" in expect:
        _check_mode(expect["mode"], result)
    for name, want in expect.get("fields", {}).items():
        got = attr(result, name)
        if name == "path" and isinstance(want, str):
            want = prefix + want
        _match(name, want, got, limits, cap)
    for name, want in expect.get("system", {}).items():
        system = attr(result, "system")
        _match(f"system.{name}", want, system.get(name) if isinstance(system, dict) else None, limits, cap)
    if "paths" in expect:
        _check_paths(expect["paths"], result, prefix)
    if "sizes" in expect:
        _check_sizes(expect["sizes"], result, prefix, limits)


def _check_error(expect, error, op, path, outcome, prefix) -> None:
    retryable = attr(error, "retryable", False)
    if "retryable" in expect and not equal(retryable, expect["retryable"]):
        raise Mismatch(f"retryable={expect['retryable']}", f"{describe(outcome, prefix)} (retryable={rep(retryable)})")
    for name, want in expect.get("attrs", {}).items():
        got = attr(error, name)
        _match(f"error.{name}", want, str(got) if isinstance(got, Mode) else got, {})
    if expect.get("envelope"):
        want_path = None if op in OBJECT_OPERATIONS else path
        got_op, got_path = attr(error, "op"), attr(error, "path")
        if not equal(got_op, op) or not equal(got_path, want_path):
            raise Mismatch(
                f"error envelope op={op!r} path={_rel(want_path, prefix)!r}",
                f"op={rep(got_op)} path={rep(_rel(got_path, prefix))}",
            )


def _check_bytes(want: bytes, got: Any) -> None:
    if not isinstance(got, bytes | bytearray):
        raise Mismatch(f"{len(want)} bytes", f"{type(got).__name__}")
    got = bytes(got)  # the plain bytes: a subclass may override comparison and iteration
    if got == want:
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


def _match(name: str, want: Any, got: Any, limits, cap: int = MAX_PAYLOAD) -> None:
    if isinstance(want, dict) and "present" in want:
        if (got is not None) != want["present"]:
            raise Mismatch(f"{name} {'set' if want['present'] else 'unset'}", f"{name}={rep(got)}")
        return
    if isinstance(want, dict) and "md5_b64" in want:
        want = base64.b64encode(hashlib.md5(evaluate(want["md5_b64"], limits, cap)).digest()).decode()
    if not equal(got, want):
        raise Mismatch(f"{name}={want!r}", f"{name}={rep(got)}")


def _check_paths(want: Mapping[str, Any], result: Any, prefix: str) -> None:
    if not isinstance(result, list):
        raise Mismatch("a listing", type(result).__name__)
    paths = [_rel(o.path, prefix) for o in result]  # Objects with str paths: the invariants stop a case otherwise
    listed = set(paths)
    for path in want.get("includes", ()):
        if path not in listed:
            raise Mismatch(f"listing including {path!r}", f"listing {sorted(listed)[:20]}")
    for path in want.get("excludes", ()):
        if path in listed:
            raise Mismatch(f"listing without {path!r}", f"listing {sorted(listed)[:20]}")
    twice = sorted({p for p in paths if paths.count(p) > 1}) if len(listed) < len(paths) else []
    if ("exactly" in want or "count" in want) and twice:
        raise Mismatch("each object listed once", f"listed more than once: {twice[:20]}")
    if "exactly" in want and listed != set(want["exactly"]):
        missing, extra = sorted(set(want["exactly"]) - listed), sorted(listed - set(want["exactly"]))
        raise Mismatch(f"listing exactly {sorted(want['exactly'])[:20]}", f"missing {missing[:20]}, extra {extra[:20]}")
    if "count" in want and len(paths) != want["count"]:
        raise Mismatch(f"{want['count']} objects listed", f"{len(paths)} objects listed")


def _check_sizes(want: Mapping[str, Any], result: Any, prefix: str, limits: Mapping[str, int]) -> None:
    """The sizes of listed objects, by relative path."""
    sizes = {_rel(o.path, prefix): o.size for o in result} if isinstance(result, list) else {}
    for path, size in want.items():
        if not equal(sizes.get(path), parse_size(size, limits)):
            raise Mismatch(f"{path!r} listed with size {parse_size(size, limits)}", f"size {rep(sizes.get(path))}")


def describe(outcome: tuple[Any, BaseException | None], prefix: str) -> str:
    """One line for what a step produced: a result summary, or the error class and message."""
    result, error = outcome
    if error is not None:
        if isinstance(error, StorageError):
            return f"{type_name(error)}: {text(error)}"
        return f"raw {text(type(error).__module__)}.{type_name(error)} escaped the driver: {text(error)}"
    return f"success ({summary(result, prefix)})"


def summary(result: Any, prefix: str) -> Any:
    """A small JSON-able picture of a result, never its payload."""
    if isinstance(result, bytes | bytearray):
        return {"bytes": len(result), "crc32": f"{zlib.crc32(result):08x}"}  # cheap even for 5 MiB payloads
    if isinstance(result, Object):
        mode = result.mode
        picture = {
            "path": _plain(_rel(result.path, prefix)),
            "mode": bounded(rep(mode), 200) if mode_problem(mode) else _mode_name(int.__int__(mode)),
            "size": _plain(result.size),
        }
        if result.append_offset is not None:
            picture["append_offset"] = _plain(result.append_offset)
        system = result.system
        if isinstance(system, dict):
            if system:
                entries = itertools.islice(dict.items(system), 50)  # dict's own items: a subclass may override them
                picture["system"] = {bounded(text(k), 200): bounded(text(v)) for k, v in entries}
        elif system is not None:
            picture["system"] = bounded(rep(system), 200)
        return picture
    if isinstance(result, list):
        paths = [_plain(_rel(o.path, prefix)) if isinstance(o, Object) else f"<{type_name(o)}>" for o in result[:20]]
        return {"objects": len(result), "paths": paths}
    return _plain(result, 200)


@functools.lru_cache(maxsize=MODE_BITS + 1)
def _mode_name(bits: int) -> str:
    """The names of a mode's bits (``read|append``), made once per value: Flag's own str is slow."""
    return str(Mode(bits))


def _plain(value: Any, repr_limit: int = LIMIT) -> Any:
    """A JSON value for one field a driver returned: numbers and text as plain values, anything else as its repr."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int) and value.bit_length() <= 64:
        return int.__int__(value)
    if isinstance(value, str):
        return bounded(str.__str__(value))
    return bounded(rep(value), repr_limit)


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _rel(path: str | None, prefix: str) -> str | None:
    if isinstance(path, str) and prefix and path.startswith(prefix):
        return path[len(prefix) :]
    return path
