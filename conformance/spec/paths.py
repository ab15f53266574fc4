"""The path rule: a step addresses relative segments under its case's scratch prefix, nothing else."""

from __future__ import annotations


def path_problem(text: str, *, prefix: bool = False) -> str | None:
    """Why ``text`` is not a confined step path (or, with ``prefix``, a list prefix); None when it is."""
    if "\0" in text:
        return "contains a NUL byte"
    if "\\" in text:
        return "contains a backslash"
    if text.startswith("/"):
        return "is absolute (starts with /)"
    if prefix:
        if text == "":
            return None  # the case root
        text = text.removesuffix("/")  # a prefix may name a folder
    if text == "":
        return "is empty"
    for segment in text.split("/"):
        if segment == "":
            return "has an empty segment"
        if segment in (".", ".."):
            return f"has a {segment!r} segment"
    return None
