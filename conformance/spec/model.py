"""The spec model: a spec has clauses (rules with levels) and cases (steps that check a clause)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

LEVELS = ("MUST", "SHOULD", "MAY", "IMPL")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
#: What a step holds besides its operation (or fault).
STEP_KEYS = frozenset({"expect", "save", "note", "repeat"})
#: Copies of a ``repeat: {pages: N}`` step on a target whose endpoint names no page size: one past
#: S3's default (and largest) page of 1,000 keys.
UNPAGED_COPIES = 1001
#: The placeholders a repeated step sets for the steps after it: how many copies it made, the last one's suffix.
REPEAT_PLACEHOLDERS = ("copies", "last_copy")


def substitute(value: Any, params: Mapping[str, Any]) -> Any:
    """Fill ``{name}`` placeholders with params; a whole-string placeholder keeps the value's type."""
    if isinstance(value, str):
        if "{" not in value:  # most strings: nothing to fill
            return value
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in params:
            return params[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: substitute(v, params) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, params) for v in value]
    return value


@dataclass(frozen=True)
class Step:
    """One step of a case: an operation (or a fault) with its arguments, what to expect and what to save."""

    op: str  # the operation, or "fault"
    args: dict[str, Any]  # the operation's arguments, or the fault's kind and options
    expect: dict[str, Any] = field(default_factory=dict)
    save: str | None = None
    repeat: int | None = None  # run the call this many times, on path-0, path-1, ...
    repeat_pages: int | None = None  # or more times than this many listing pages hold (see copies())
    line: int = 0
    named: tuple[str, ...] = ()  # every operation or fault the step names: lint wants exactly one
    extra: tuple[str, ...] = ()  # keys beside the fault of a fault step: lint refuses them

    @classmethod
    def parse(cls, raw: Mapping[str, Any], operations: Container[str], line: int = 0) -> Step:
        """A step from its YAML mapping (already schema-checked; lint judges what the schema cannot)."""
        named = tuple(k for k in raw if k in operations or k == "fault")
        op = named[0] if len(named) == 1 else ""
        repeat = raw.get("repeat")
        pages = repeat.get("pages") if isinstance(repeat, Mapping) else None
        return cls(
            op=op,
            args=dict(raw.get(op) or {}),
            expect=dict(raw.get("expect") or {}),
            save=raw.get("save"),
            repeat=None if isinstance(repeat, Mapping) else repeat,
            repeat_pages=pages,
            line=line,
            named=named,
            extra=tuple(k for k in raw if k not in ("fault", "note")) if op == "fault" else (),
        )

    @property
    def is_fault(self) -> bool:
        return self.op == "fault"

    @property
    def repeats(self) -> bool:
        return self.repeat is not None or self.repeat_pages is not None

    def copies(self, list_page_size: int | None) -> int:
        """How many times the call runs: ``repeat: N``, or for ``{pages: N}`` N full pages and 2 more objects
        on a target whose endpoint names its page size, else UNPAGED_COPIES; 1 for a step that does not repeat.
        """
        if self.repeat_pages is None:
            return self.repeat or 1
        return self.repeat_pages * list_page_size + 2 if list_page_size else UNPAGED_COPIES

    def filled(self, params: Mapping[str, Any]) -> Step:
        """The step with a run's params in place of its placeholders."""
        if not params:
            return self
        return replace(self, args=substitute(self.args, params), expect=substitute(self.expect, params))


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
    steps: tuple[Step, ...]
    requires: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    line: int = 0

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
