"""Confinement: caller keys map under one root folder, and nothing outside it is reachable."""

from __future__ import annotations

from conformance.driver import DriverError


def normalize_root(root: str) -> str:
    """The root folder as an absolute Dropbox path without a trailing '/'; refuses the account root."""
    cleaned = "/" + "/".join(part for part in str(root).split("/") if part)
    if cleaned == "/" or any(part in (".", "..") for part in cleaned.split("/")):
        raise DriverError(f"dropbox: root {root!r} must be a folder below '/', without '.' or '..'")
    return cleaned


def bad_key(key: str, *, prefix: bool = False) -> str | None:
    """Why a relative key cannot be mapped under the root, or None when it can.

    A list prefix may be empty or end with '/'; an object key may not.
    """
    if not isinstance(key, str):
        return f"path must be a string, not {type(key).__name__}"
    if prefix and key == "":
        return None
    parts = key.split("/")
    if prefix:
        parts = parts[:-1] if parts[-1] == "" else parts
    if key.startswith("/"):
        return "path must be relative (no leading '/')"
    if any(part in ("", ".", "..") for part in parts):
        return "path has an empty, '.' or '..' segment"
    if any(ord(c) < 32 for c in key):
        return "path has a control character"
    return None


def to_api(root: str, key: str) -> str:
    """The Dropbox path of a (validated) relative key."""
    return f"{root}/{key}" if key else root


def to_key(root: str, path_display: str, path_lower: str) -> str | None:
    """The relative key of an entry below the root, or None for the root itself or anything outside."""
    head = root.lower() + "/"
    if not path_lower.startswith(head):
        return None
    # Dropbox keeps the casing a path was created with; the root's own casing may differ.
    return path_display[len(head) :]
