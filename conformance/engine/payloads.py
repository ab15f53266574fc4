"""Seeded, reproducible payloads and the size syntax of specs (``4KiB``, ``5MiB+1``, ``limit.x+1``)."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
MAX_PAYLOAD = 64 * 1024**2  # bytes one data expression may build, so no spec makes the harness allocate gigabytes
SIZE = re.compile(r"^\s*(?:(\d+)\s*(B|KiB|MiB|GiB)?|limit\.([a-z_]+))\s*(?:\+\s*(\d+))?\s*$")


class SizeError(ValueError):
    """A size that does not parse, or names a limit the driver does not declare."""


def parse_size(value: int | str, limits: Mapping[str, int] | None = None) -> int:
    """Bytes for ``12``, ``"4KiB"``, ``"5MiB+1"`` or ``"limit.append_size_maximum+1"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise SizeError(f"negative size {value}")
        return value
    match = SIZE.match(str(value))
    if not match:
        raise SizeError(f"bad size {value!r} (use 12, 4KiB, 5MiB+1 or limit.NAME+1)")
    number, unit, limit, extra = match.groups()
    if limit is not None:
        if limits is None:
            return 0  # syntax check only
        if limit not in limits:
            raise SizeError(f"size {value!r} names limit {limit}, which the driver does not declare")
        base = limits[limit]
    else:
        base = int(number) * UNITS[unit or ""]
    return base + int(extra or 0)


@lru_cache(maxsize=64)
def random_bytes(size: int, seed: int) -> bytes:
    """The same bytes for the same size and seed, in every process and run."""
    return random.Random(seed).randbytes(size)


def measure(expr: Any, limits: Mapping[str, int] | None = None, cap: int = MAX_PAYLOAD) -> int:
    """Bytes a data expression evaluates to, computed without building it; SizeError if any part exceeds ``cap``."""
    if isinstance(expr, bytes):
        size = len(expr)
    elif isinstance(expr, str):
        size = len(expr.encode())
    elif "random" in expr:
        size = parse_size(expr["random"], limits)
    elif "concat" in expr:
        size = sum(measure(part, limits, cap) for part in expr["concat"])
    elif "slice" in expr:
        whole = measure(expr["slice"], limits, cap)
        start = min(parse_size(expr.get("offset", 0), limits), whole)
        end = whole if "size" not in expr else min(whole, start + parse_size(expr["size"], limits))
        size = end - start
    else:
        raise ValueError(f"not a data expression: {expr!r}")
    if size > cap:
        raise SizeError(f"payload of {size} bytes is larger than the limit of {cap} bytes")
    return size


def evaluate(expr: Any, limits: Mapping[str, int] | None = None, cap: int = MAX_PAYLOAD) -> bytes:
    """Bytes of a data expression (a string, ``{random, seed}``, ``{concat}``, ``{slice}``); SizeError above ``cap``."""
    measure(expr, limits, cap)  # before anything is allocated
    return _build(expr, limits)


def _build(expr: Any, limits: Mapping[str, int] | None) -> bytes:
    if isinstance(expr, bytes):
        return expr
    if isinstance(expr, str):
        return expr.encode()
    if "random" in expr:
        return random_bytes(parse_size(expr["random"], limits), int(expr.get("seed", 0)))
    if "concat" in expr:
        return b"".join(_build(part, limits) for part in expr["concat"])
    data = _build(expr["slice"], limits)
    start = parse_size(expr.get("offset", 0), limits)
    end = None if "size" not in expr else start + parse_size(expr["size"], limits)
    return data[start:end]


def is_data(value: Any) -> bool:
    """Whether a pair value is a data expression (bytes), rather than a plain scalar."""
    return isinstance(value, dict) and bool({"random", "concat", "slice"} & set(value))
