"""The spec model: a spec has clauses (rules with levels) and cases (steps that check a clause)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVELS = ("MUST", "SHOULD", "MAY", "IMPL")


@dataclass(frozen=True)
class Clause:
    """One rule of a spec, with the rule id of gsp-rules.md and its level."""

    id: str
    rule: str
    level: str
    status: str
    text: str
    source: str
    link: str | None = None


@dataclass(frozen=True)
class Case:
    """Steps checking one clause, gated by capabilities, expanded over its params."""

    id: str
    clause: str
    title: str
    steps: tuple[dict[str, Any], ...]
    requires: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    line: int = 0
    step_lines: tuple[int, ...] = ()

    def expansions(self) -> list[dict[str, tuple[str, Any]]]:
        """Every combination of params as {name: (label, value)}, in declared order."""
        if not self.params:
            return [{}]
        names = list(self.params)
        choices = [list(self.params[n].items()) for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


@dataclass(frozen=True)
class Spec:
    """A loaded, validated spec file."""

    id: str
    title: str
    version: int
    source: str
    path: Path
    sha256: str
    clauses: dict[str, Clause]
    cases: tuple[Case, ...]

    @property
    def name(self) -> str:
        """The short name used in node ids and markers: the file stem (``delete``)."""
        return self.path.stem
