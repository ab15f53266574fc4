"""Dropbox SDK and transport exceptions mapped onto the conformance error taxonomy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests
from dropbox import exceptions as dbx_exc

from conformance import errors
from conformance.driver import Mode

# Route-error tags, wherever they sit in the typed error, and the class each one means.
_THROTTLED = {"too_many_write_operations", "too_many_requests"}
_DENIED = {
    "no_write_permission",
    "access_restricted",
    "restricted_content",
    "team_folder",
    "route_access_denied",
}
_RESTRICTED = {
    "insufficient_space",
    "team_folder_insufficient_space",
    "member_folder_insufficient_space",
    "upload_traffic_limit_reached",
    "payload_too_large",
    "too_large",
    "too_many_files",
    "disallowed_name",
    "malformed_path",
}


def route_tags(error: Any) -> tuple[list[str], int | None]:
    """The chain of union tags in a typed route error, and ``correct_offset`` when present."""
    chain: list[str] = []
    node = error
    while node is not None:
        if hasattr(node, "_tag"):
            chain.append(node._tag)
            node = node._value
        elif hasattr(node, "correct_offset"):
            return chain, node.correct_offset
        elif hasattr(node, "reason"):  # UploadWriteFailed wraps its WriteError in `reason`
            node = node.reason
        else:
            break
    return chain, None


def translate(
    exc: BaseException,
    *,
    op: str,
    path: str | None,
    driver: str,
    mode: Mode | None = None,
    offset: int | None = None,
    secrets: Iterable[str] = (),
    http: tuple[int, str | None] | None = None,
) -> errors.StorageError:
    """The StorageError for an exception the SDK raised; the caller raises it ``from exc``.

    ``mode`` and ``offset`` describe the append object of write_append/commit_append; ``http``
    is the status and Retry-After of the last response, when one arrived; every secret in
    ``secrets`` is blanked out of the message.
    """
    if isinstance(exc, errors.StorageError):
        return exc
    cls, message, extra = _classify_http(exc, http) or _classify(exc, mode, offset)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    error = cls(message, op=op, path=path, driver=driver, **extra)
    if isinstance(exc, dbx_exc.ApiError):
        correct = route_tags(exc.error)[1]
        if correct is not None:
            error.correct_offset = correct  # where a retried append must start
    return error


def _classify_http(exc: BaseException, http: tuple[int, str | None] | None) -> tuple[type, str, dict] | None:
    """What only the HTTP status tells: a 403 access error, a 503 with Retry-After (throttling)."""
    if http is None:
        return None
    status, retry_after = http
    if status == 403:
        # The SDK decodes a 403 AccessError against the route's error type: it surfaces as an
        # ApiError with a catch-all tag or as a decoding error, never as what it is.
        return errors.PermissionDenied, f"access denied (HTTP 403): {_short(str(exc))}", {}
    if status == 503 and retry_after is not None and isinstance(exc, dbx_exc.InternalServerError):
        # Dropbox: a 503 with Retry-After is rate limiting; without it, a transient server error.
        seconds = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
        return errors.RequestThrottled, f"throttled (HTTP 503), retry after {retry_after} s", {"retry_after": seconds}
    return None


def _classify(exc: BaseException, mode: Mode | None, offset: int | None) -> tuple[type, str, dict[str, Any]]:
    if isinstance(exc, dbx_exc.ApiError):
        return _route_error(exc.error, mode, offset)
    if isinstance(exc, dbx_exc.AuthError):
        tag = getattr(exc.error, "_tag", "unknown")
        return errors.PermissionDenied, f"authentication refused (HTTP 401): {tag}", {}
    if isinstance(exc, dbx_exc.RateLimitError):
        reason = getattr(getattr(exc.error, "reason", None), "_tag", "too_many_requests")
        retry = exc.backoff if exc.backoff is not None else getattr(exc.error, "retry_after", None)
        text = f"rate limited (HTTP 429): {reason}" + (f", retry after {retry} s" if retry is not None else "")
        return errors.RequestThrottled, text, {"retry_after": retry}
    if isinstance(exc, dbx_exc.PathRootError):
        tag = getattr(exc.error, "_tag", "unknown")
        cls = errors.PermissionDenied if tag == "no_permission" else errors.Unexpected
        return cls, f"invalid path root (HTTP 422): {tag}", {}
    if isinstance(exc, dbx_exc.InternalServerError):
        return errors.ServiceInternal, f"service error (HTTP {exc.status_code}): {_short(exc.body)}", {}
    if isinstance(exc, dbx_exc.BadInputError):
        return errors.Unexpected, f"bad request (HTTP 400): {_short(exc.message)}", {}
    if isinstance(exc, dbx_exc.HttpError):
        return errors.Unexpected, f"HTTP {exc.status_code}: {_short(exc.body)}", {}
    if isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError):
        # ConnectionError covers SSLError and ProxyError; ChunkedEncodingError is a body cut short.
        return errors.NetworkError, f"transport failed: {type(exc).__name__}: {_short(str(exc))}", {}
    return errors.Unexpected, f"{type(exc).__name__}: {_short(str(exc))}", {}


def _route_error(error: Any, mode: Mode | None, offset: int | None) -> tuple[type, str, dict[str, Any]]:
    """A 409 route error: the class follows the most specific tag Dropbox gave."""
    chain, correct = route_tags(error)
    summary = "/".join(chain) or "unknown"
    tags = set(chain)
    actual = mode if mode is not None else Mode(0)
    if "incorrect_offset" in tags:
        # RestrictionDissatisfied: the service's precondition (append exactly at the session's
        # offset) is not met; retrying the same request cannot succeed, so not ServiceInternal,
        # and it is classified, so not Unexpected. The message names the offset to resume at.
        text = f"{summary}: append at offset {offset} refused, the upload session is at offset {correct}"
        return errors.RestrictionDissatisfied, text, {}
    if "closed" in tags:
        # The session was committed (or closed): the object is no longer appendable, which is
        # what go-storage's dropbox reported for append or commit after commit.
        text = f"{summary}: the upload session is closed, the append object was already committed"
        return errors.ObjectModeInvalid, text, {"expected": Mode.APPEND, "actual": actual & ~Mode.APPEND}
    if "not_found" in tags:
        what = "upload session not found or expired" if "lookup_failed" in tags or mode else "not found"
        return errors.ObjectNotExist, f"{summary}: {what}", {}
    if tags & _THROTTLED:
        return (
            errors.RequestThrottled,
            f"{summary}: too many write operations, retry later",
            {"retry_after": None},
        )
    if tags & _DENIED:
        return errors.PermissionDenied, summary, {}
    if "not_file" in tags or ("conflict" in tags and "folder" in tags):
        return errors.ObjectModeInvalid, f"{summary}: a folder is at this path", _modes(Mode.READ, Mode.DIR)
    if "not_folder" in tags or "file_ancestor" in tags:
        return (
            errors.ObjectModeInvalid,
            f"{summary}: a file is where a folder is needed",
            _modes(Mode.DIR, Mode.READ),
        )
    if tags & _RESTRICTED:
        return errors.RestrictionDissatisfied, summary, {}
    return errors.Unexpected, summary, {}


def _modes(expected: Mode, actual: Mode) -> dict[str, Any]:
    return {"expected": expected, "actual": actual}


def _short(text: Any, limit: int = 300) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + "..."
