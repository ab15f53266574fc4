"""Seeded, reproducible payloads and the size syntax of specs (``4KiB``, ``5MiB+1``, ``limit.x+1``)."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
SIZE = re.compile(r"^\s*(?:(\d+)\s*(B|KiB|MiB|GiB)?|limit\.([a-z_]+))\s*(?:\+\s*(\d+))?\s*$")


class SizeError(ValueError):
    """A size that does not parse, or names a limit the driver does not declare."""


def parse_size(value: int | str, limits: Mapping[str, int] | None = None) -> int:
    """Bytes for ``12``, ``"4KiB"``, ``"5MiB+1"`` or ``"limit.append_size_maximum+1"``."""
    if isinstance(value, int) and not isinstance(value, bool):
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


def evaluate(expr: Any, limits: Mapping[str, int] | None = None) -> bytes:
    """Bytes of a data expression: a string, ``{random, seed}``, ``{concat}`` or ``{slice}``."""
    if isinstance(expr, bytes):
        return expr
    if isinstance(expr, str):
        return expr.encode()
    if "random" in expr:
        return random_bytes(parse_size(expr["random"], limits), int(expr.get("seed", 0)))
    if "concat" in expr:
        return b"".join(evaluate(part, limits) for part in expr["concat"])
    if "slice" in expr:
        data = evaluate(expr["slice"], limits)
        start = parse_size(expr.get("offset", 0), limits)
        end = None if "size" not in expr else start + parse_size(expr["size"], limits)
        return data[start:end]
    raise ValueError(f"not a data expression: {expr!r}")


def is_data(value: Any) -> bool:
    """Whether a pair value is a data expression (bytes), rather than a plain scalar."""
    return isinstance(value, dict) and bool({"random", "concat", "slice"} & set(value))
