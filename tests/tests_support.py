"""Small helpers for tests that need files."""

from __future__ import annotations

from pathlib import Path


def write_spec(folder: Path, text: str, name: str = "ex.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
