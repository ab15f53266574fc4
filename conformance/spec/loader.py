"""Load spec files: YAML within limits and with line numbers, JSON Schema validation, then lint."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.driver import OPERATIONS
from conformance.spec.limits import DEFAULT_LIMITS, MAX_SHOWN, SpecLimits, not_shown
from conformance.spec.model import Case, Clause, Spec, Step
from conformance.spec.yamlread import Document, YamlProblem, read_document

if TYPE_CHECKING:
    import jsonschema

SHORT = 240  # characters of one message
_checked: set[str] = set()  # see schema_checked()
_parsed: dict[tuple[str, str, SpecLimits], Spec] = {}  # see load_spec


class SpecError(Exception):
    """One or more problems in spec or known-issues files, each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def bundled_specs_dir() -> Path:
    """The folder of the specs shipped with the harness."""
    return Path(str(files("conformance.bundled_specs")))


@cache
def schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in specs/schema, by file stem (``spec``, ``known-issues``, ...)."""
    return json.loads((bundled_specs_dir() / "schema" / f"{name}.schema.json").read_text())


def spec_files(folder: Path | None = None) -> list[Path]:
    """The spec files of a folder, sorted by name so every process sees the same order."""
    return sorted((folder or bundled_specs_dir()).glob("*.yaml"))


def schema_checked() -> list[str]:
    """The files that passed their schema in this process (or in the one that started it) as ``schema:sha256``."""
    return sorted(_checked)


def trust_schema_checked(entries: Iterable[str]) -> None:
    """Take the schema_checked() of the process that started this one: files of that content are not checked again."""
    _checked.update(entries)


def read_yaml(path: Path, schema_name: str, limits: SpecLimits = DEFAULT_LIMITS) -> Document:
    """Parse a YAML file within the limits and validate it; raise SpecError listing every problem with its line."""
    try:
        doc = read_document(path, limits)
    except OSError as exc:
        raise SpecError([f"{path}:1: cannot read: {exc.strerror or exc}"]) from None
    except YamlProblem as exc:
        raise SpecError([f"{path}:{exc.line}: {exc.message}"]) from None
    if not isinstance(doc.data, dict):
        found = "the file is empty" if doc.data is None else f"the top level is {_kind(doc.data)}"
        raise SpecError([f"{path}:1: {found}; expected a mapping"])
    problems = [f"{path}:{line}: duplicate key {key!r}" for line, key in doc.duplicates]
    entry = f"{schema_name}:{doc.sha256}"
    if entry in _checked and not problems:
        return doc
    import jsonschema  # a tenth of a second to import, which xdist workers told what passed never spend

    validator = jsonschema.Draft202012Validator(schema(schema_name))
    errors = list(itertools.islice(validator.iter_errors(doc.data), MAX_SHOWN + 1))  # a hostile file may have 10^5
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(map(str, error.absolute_path)) or "top level"
        pointer = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            pointer += sorted(set(error.instance) - set(error.schema.get("properties", {})))[:1]
        problems.append(f"{path}:{doc.line(pointer)}: {where}: {_short(_message(error))}")
    if len(problems) > MAX_SHOWN:
        problems[MAX_SHOWN:] = [not_shown(path)]
    if problems:
        raise SpecError(problems)
    _checked.add(entry)
    return doc


def load_spec(path: Path, limits: SpecLimits = DEFAULT_LIMITS) -> Spec:
    """Load one spec file; raise SpecError with every schema problem as ``file:line: message``.

    A file this process has parsed before with the same content and limits is not parsed again: the fork
    server parses the run's specs once, and the workers it forks find them parsed (40 ms of CPU each).
    """
    key = _content_key(path, limits)
    if key in _parsed:
        return _parsed[key]
    spec = _parse_spec(path, limits)
    where = key[0] if key else str(path.resolve())
    _parsed[(where, spec.sha256, limits)] = spec  # under the content parsed, if the file changed meanwhile
    return spec


def _content_key(path: Path, limits: SpecLimits) -> tuple[str, str, SpecLimits] | None:
    try:
        if path.stat().st_size > limits.max_file_bytes:
            return None  # refused unread by the parser
        return str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest(), limits
    except OSError:
        return None  # the parser says why, on one line


def _parse_spec(path: Path, limits: SpecLimits) -> Spec:
    doc = read_yaml(path, "spec", limits)
    data = doc.data
    ids = [c["id"] for c in data["clauses"]]
    duplicates = [
        f"{path}:{doc.line(['clauses', i])}: duplicate clause id {cid!r}" for i, cid in enumerate(ids) if cid in ids[:i]
    ]
    if duplicates:
        raise SpecError(duplicates)
    clauses = {c["id"]: Clause(**c) for c in data["clauses"]}
    cases = tuple(
        Case(
            id=c["id"],
            clause=c["clause"],
            title=c["title"],
            steps=tuple(
                Step.parse(step, OPERATIONS, doc.line(["cases", i, "steps", j])) for j, step in enumerate(c["steps"])
            ),
            requires=tuple(c.get("requires", ())),
            unless=tuple(c.get("unless", ())),
            params={name: _labelled(values) for name, values in c.get("params", {}).items()},
            line=doc.line(["cases", i]),
        )
        for i, c in enumerate(data["cases"])
    )
    return Spec(
        id=data["id"],
        title=data["title"],
        version=data["version"],
        source=data["source"],
        path=path,
        sha256=doc.sha256,
        clauses=clauses,
        cases=cases,
    )


def load_specs(paths: Iterable[Path], limits: SpecLimits = DEFAULT_LIMITS) -> list[Spec]:
    """Load and lint several spec files within the limits, gathering the problems of all before raising."""
    from conformance.spec.lint import lint

    specs, problems = [], []
    for path in paths:
        try:
            specs.append(load_spec(path, limits))
        except SpecError as exc:
            problems += exc.problems
    problems += lint(specs, limits)
    if problems:
        raise SpecError(problems)
    return specs


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key {', '.join(map(repr, extra))} (allowed: {', '.join(allowed)})"
    if error.validator == "oneOf" and error.context:  # the branch of the value's own type says what is wrong
        fitting = [e for e in error.context if e.validator != "type" or e.relative_path] or error.context
        best = max(fitting, key=lambda e: len(e.relative_path))
        inner = "/".join(map(str, best.relative_path))
        return f"{inner}: {_message(best)}" if inner else _message(best)
    return error.message


def _short(message: str) -> str:
    """A message that quotes a huge value keeps one readable line."""
    return message if len(message) <= SHORT else message[: SHORT - 3] + "..."


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _labelled(values: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """Params as {label: value}: a list labels each value by itself."""
    if isinstance(values, dict):
        return dict(values)
    return {str(v): v for v in values}
