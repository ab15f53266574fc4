"""Caps on what a spec or known-issues file may cost to load, lint and run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.engine.payloads import MAX_PAYLOAD

MiB = 1024**2
MAX_SHOWN = 20  # problems listed per file; one more line says the rest are not shown


@dataclass(frozen=True)
class SpecLimits:
    """Every cap the loader and lint enforce; the defaults leave the bundled specs far inside them."""

    max_file_bytes: int = 50 * MiB  # a larger file is refused unread
    max_nodes: int = 40_000  # keys and values per file: bounds parse, schema and lint time (< 1 s at the cap)
    max_depth: int = 32  # nested mappings and lists; the bundled specs need 11
    max_scalar: int = 64 * 1024  # characters in one value
    max_expansions: int = 10_000  # runs of one case: the product of its params' lengths
    max_spec_expansions: int = 100_000  # runs of all cases of one file
    max_payload: int = MAX_PAYLOAD  # bytes of one data expression or size


DEFAULT_LIMITS = SpecLimits()


def not_shown(path: Path) -> str:
    """The line that ends a file's problems when there are more than MAX_SHOWN."""
    return f"{path}:1: more problems not shown (the first {MAX_SHOWN} are)"
