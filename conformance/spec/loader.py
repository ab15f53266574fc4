"""Load spec files: YAML with line numbers, JSON Schema validation, then the semantic checks of lint."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from conformance.spec.model import Case, Clause, Spec

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: specs load ~10x faster


class SpecError(Exception):
    """One or more problems in spec or known-issues files, each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def bundled_specs_dir() -> Path:
    """The folder of the specs shipped with the harness."""
    return Path(str(files("conformance.specs")))


@cache
def schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in specs/schema, by file stem (``spec``, ``known-issues``, ...)."""
    return json.loads((bundled_specs_dir() / "schema" / f"{name}.schema.json").read_text())


def spec_files(folder: Path | None = None) -> list[Path]:
    """The spec files of a folder, sorted by name so every process sees the same order."""
    return sorted((folder or bundled_specs_dir()).glob("*.yaml"))


def read_yaml(path: Path, schema_name: str) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file and validate it; raise SpecError listing every problem with its line."""
    try:
        text = path.read_text(encoding="utf-8")
        loader = LOADER(text)
        try:  # one parse: the node tree gives line numbers, the same tree gives the data
            node = loader.get_single_node()
            data = _plain(loader.construct_document(node)) if node is not None else None
        finally:
            loader.dispose()
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise SpecError([f"{path}:{line}: invalid YAML: {exc.problem or exc}"]) from None
    problems = [f"{path}:{line}: duplicate key {key!r}" for line, key in _duplicate_keys(node)]
    validator = jsonschema.Draft202012Validator(schema(schema_name))
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(map(str, error.absolute_path)) or "top level"
        pointer = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            pointer += sorted(set(error.instance) - set(error.schema.get("properties", {})))[:1]
        problems.append(f"{path}:{line_of(node, pointer)}: {where}: {_message(error)}")
    if problems:
        raise SpecError(problems)
    return data, node


def load_spec(path: Path) -> Spec:
    """Load one spec file; raise SpecError with every schema problem as ``file:line: message``."""
    data, node = read_yaml(path, "spec")
    ids = [c["id"] for c in data["clauses"]]
    duplicates = [
        f"{path}:{line_of(node, ['clauses', i])}: duplicate clause id {cid!r}"
        for i, cid in enumerate(ids)
        if cid in ids[:i]
    ]
    if duplicates:
        raise SpecError(duplicates)
    clauses = {c["id"]: Clause(**c) for c in data["clauses"]}
    cases = tuple(
        Case(
            id=c["id"],
            clause=c["clause"],
            title=c["title"],
            steps=tuple(c["steps"]),
            requires=tuple(c.get("requires", ())),
            unless=tuple(c.get("unless", ())),
            params={name: _labelled(values) for name, values in c.get("params", {}).items()},
            line=line_of(node, ["cases", i]),
            step_lines=tuple(line_of(node, ["cases", i, "steps", j]) for j in range(len(c["steps"]))),
        )
        for i, c in enumerate(data["cases"])
    )
    return Spec(
        id=data["id"],
        title=data["title"],
        version=data["version"],
        source=data["source"],
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        clauses=clauses,
        cases=cases,
    )


def load_specs(paths: Iterable[Path]) -> list[Spec]:
    """Load and lint several spec files, gathering the problems of all before raising."""
    from conformance.spec.lint import lint

    specs, problems = [], []
    for path in paths:
        try:
            specs.append(load_spec(path))
        except SpecError as exc:
            problems += exc.problems
    problems += lint(specs)
    if problems:
        raise SpecError(problems)
    return specs


def line_of(node: yaml.Node | None, pointer: Iterable[Any]) -> int:
    """The 1-based line of the YAML node at a JSON pointer, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else 0
    for part in pointer:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _duplicate_keys(node: yaml.Node | None) -> list[tuple[int, str]]:
    if isinstance(node, yaml.MappingNode):
        seen, found = set(), []
        for key, value in node.value:
            if key.value in seen:
                found.append((key.start_mark.line + 1, key.value))
            seen.add(key.value)
            found += _duplicate_keys(value)
        return found
    if isinstance(node, yaml.SequenceNode):
        return [d for item in node.value for d in _duplicate_keys(item)]
    return []


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key {', '.join(map(repr, extra))} (allowed: {', '.join(allowed)})"
    if error.validator == "oneOf" and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return best.message
    return error.message


def _labelled(values: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """Params as {label: value}: a list labels each value by itself."""
    if isinstance(values, dict):
        return dict(values)
    return {str(v): v for v in values}


def _plain(value: Any) -> Any:
    """YAML dates as ISO strings, so schemas see what the author wrote."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
