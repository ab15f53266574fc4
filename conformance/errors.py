"""The error taxonomy drivers raise (GSP-47, GSP-127, go-storage#145).

A driver raises one of these classes, with the backend's own exception as ``__cause__``.
Anything else escaping a driver is a conformance failure.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error a driver raises: carries the operation, path and driver name."""

    retryable = False

    def __init__(
        self,
        message: str = "",
        *,
        op: str | None = None,
        path: str | None = None,
        driver: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.op = op
        self.path = path
        self.driver = driver

    def __str__(self) -> str:
        head = ": ".join(p for p in (self.op, self.driver) if p)
        if self.path is not None:
            head = f"{head}, {self.path}" if head else self.path
        text = self.message or type(self).__name__
        return f"{head}: {text}" if head else text


class ObjectNotExist(StorageError):
    """The target object does not exist."""


class ObjectModeInvalid(StorageError):
    """The object passed lacks the mode the operation needs (GSP-61)."""

    def __init__(self, message: str = "", *, expected=None, actual=None, **context) -> None:
        super().__init__(message, **context)
        self.expected = expected
        self.actual = actual


class PermissionDenied(StorageError):
    """The backend refused access."""


class CapabilityInsufficient(StorageError):
    """The driver lacks the capability asked for."""


class PairUnsupported(CapabilityInsufficient):
    """A pair the operation does not accept; never silently ignored."""

    def __init__(self, message: str = "", *, pair: str | None = None, **context) -> None:
        super().__init__(message or f"pair unsupported: {pair}", **context)
        self.pair = pair


class NotImplemented(CapabilityInsufficient):  # noqa: A001 - the GSP name of this error
    """The driver does not implement the operation (GSP-837)."""


class RestrictionDissatisfied(StorageError):
    """A restriction of the service is not met: a size limit, a missing pair."""


class PairRequired(RestrictionDissatisfied):
    """A pair the operation needs is missing."""

    def __init__(self, message: str = "", *, keys: list[str] | None = None, **context) -> None:
        keys = list(keys or [])
        super().__init__(message or f"pair required: {', '.join(keys)}", **context)
        self.keys = keys


class ServiceInternal(StorageError):
    """The service failed internally (HTTP 5xx); retryable (GSP-127)."""

    retryable = True


class RequestThrottled(StorageError):
    """The service throttled the request (HTTP 429, 503 SlowDown); retryable (GSP-127)."""

    retryable = True

    def __init__(self, message: str = "", *, retry_after: float | None = None, **context) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class NetworkError(StorageError):
    """The transport failed: refused, reset, timed out (go-storage#145, proposed)."""

    retryable = True


class Unexpected(StorageError):
    """A failure no other class describes."""


#: Every error class by the name specs use for it.
ERRORS: dict[str, type[StorageError]] = {
    cls.__name__: cls
    for cls in (
        StorageError,
        ObjectNotExist,
        ObjectModeInvalid,
        PermissionDenied,
        CapabilityInsufficient,
        PairUnsupported,
        NotImplemented,
        RestrictionDissatisfied,
        PairRequired,
        ServiceInternal,
        RequestThrottled,
        NetworkError,
        Unexpected,
    )
}
