"""Driver data as text and values that cannot raise: every repr, str and comparison the engine makes of it."""

from __future__ import annotations

import re
from typing import Any

from conformance.engine.interrupts import propagates

LIMIT = 4096  # characters of one message or trace field; a driver's 10 MB message must not become a 10 MB record
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # controls move terminals; lone surrogates break UTF-8


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def text(value: Any) -> str:
    """``str(value)``, or a placeholder naming what went wrong; unbounded, so it can be scrubbed whole."""
    if type(value) is str:
        return value
    return _convert(str, value)


def rep(value: Any) -> str:
    """``repr(value)``, or a placeholder naming what went wrong; unbounded."""
    return _convert(repr, value)


def _convert(how: Any, value: Any) -> str:
    try:
        made = how(value)
        return made if type(made) is str else str.__str__(made)  # a str subclass may override its own methods
    except BaseException as exc:  # a hostile __str__ may raise anything, but a deadline or Ctrl-C still stops the case
        if propagates(exc):
            raise
        return f"<unprintable {type_name(value)}: {how.__name__}() raised {type_name(exc)}>"


def bounded(value: str, limit: int = LIMIT) -> str:
    """A text fit for records and terminals: controls and lone surrogates escaped, at most ``limit`` characters."""
    total = len(value)
    shown = _UNSAFE.sub(_escape, value[:limit])  # escaping only grows text, so the first ``limit`` suffice
    if total <= limit and len(shown) <= limit:
        return shown
    note = f"... [truncated: {total} chars]"
    return shown[: max(limit - len(note), 0)] + note


def type_name(value: Any) -> str:
    """The class name of a value (always a str: type() enforces it)."""
    return type(value).__name__


def attr(value: Any, name: str, default: Any = None) -> Any:
    """``getattr`` that treats a raising property as absent."""
    try:
        return getattr(value, name, default)
    except BaseException as exc:
        if propagates(exc):
            raise
        return default


def equal(got: Any, want: Any) -> bool:
    """``got == want``, where a comparison that raises or returns a non-bool counts as unequal."""
    try:
        return (got == want) is True
    except BaseException as exc:
        if propagates(exc):
            raise
        return False
