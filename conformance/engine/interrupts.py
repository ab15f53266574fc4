"""What may cut a case short: its deadline and a real Ctrl-C. Everything else a driver raises is data."""

from __future__ import annotations

import _signal
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class CaseTimeout(BaseException):
    """The case ran past its deadline (a BaseException so a driver's ``except Exception`` cannot eat it)."""


_user = threading.Event()


def watch_user_interrupts() -> None:
    """Note a real SIGINT before it becomes KeyboardInterrupt, so a driver raising one is told apart."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupted(signum: int, frame: Any) -> None:
        _user.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)


def user_interrupted() -> bool:
    """Whether the user pressed Ctrl-C (or sent SIGINT) during this process."""
    return _user.is_set()


def propagates(exc: BaseException) -> bool:
    """Whether an exception out of a driver call must stop the case instead of being judged."""
    return isinstance(exc, CaseTimeout) or (isinstance(exc, KeyboardInterrupt) and user_interrupted())


@contextlib.contextmanager
def deadline(seconds: float, message: str) -> Iterator[None]:
    """Raise CaseTimeout(message) if the block runs longer than ``seconds`` (main thread, POSIX)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(message)

    # _signal.signal is what signal.signal wraps: the wrapper turns the handler it returns into an enum
    # member, raising and catching a ValueError for a function; twice per case that was a tenth of a case
    previous = _signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _signal.signal(signal.SIGALRM, previous)
