"""Semantic checks the schema cannot express: ids, clause coverage, names known to the interface."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from conformance.driver import KNOWN_FEATURES, KNOWN_LIMITS, KNOWN_PAIRS, OPERATIONS
from conformance.errors import ERRORS
from conformance.spec.bounds import PLACEHOLDER, CaseBounds, expansion_count
from conformance.spec.limits import DEFAULT_LIMITS, MAX_SHOWN, SpecLimits, not_shown
from conformance.spec.model import REPEAT_PLACEHOLDERS, Case, Spec, Step

STEP_ARGS = frozenset({"path", "prefix", "data", "obj"})


def lint(specs: Iterable[Spec], limits: SpecLimits = DEFAULT_LIMITS) -> list[str]:
    """Every problem across the specs as ``file:line: message``, judged against the limits."""
    problems: list[str] = []
    seen_specs: dict[str, str] = {}
    for spec in specs:
        if spec.id in seen_specs:
            problems.append(f"{spec.path}:1: spec id {spec.id} already used by {seen_specs[spec.id]}")
        seen_specs[spec.id] = str(spec.path)
        found = list(
            itertools.islice(_spec_problems(spec, limits), MAX_SHOWN + 1)
        )  # lint stops early on a hostile file
        problems += [f"{spec.path}:{line}: {msg}" for line, msg in found[:MAX_SHOWN]]
        problems += [not_shown(spec.path)] if found[MAX_SHOWN:] else []
    return problems


def _spec_problems(spec: Spec, limits: SpecLimits) -> Iterator[tuple[int, str]]:
    runs = sum(map(expansion_count, spec.cases))
    if runs > limits.max_spec_expansions:
        yield 1, f"the cases expand to {runs} runs, more than the limit of {limits.max_spec_expansions} per file"
    covered = set()
    seen_cases: set[str] = set()
    for case in spec.cases:
        if case.id in seen_cases:
            yield case.line, f"duplicate case id {case.id!r}"
        seen_cases.add(case.id)
        if case.clause not in spec.clauses:
            yield case.line, f"case {case.id}: unknown clause {case.clause!r}"
        covered.add(case.clause)
        yield from _case_problems(case, limits)
        clause = spec.clauses.get(case.clause)
        if clause is not None and clause.level != "IMPL" and any("otherwise" in step.expect for step in case.steps):
            yield case.line, f"case {case.id}: only a case of an IMPL clause names an otherwise clause"
    for clause in spec.clauses.values():
        if clause.level in ("MUST", "SHOULD") and clause.id not in covered:
            yield 1, f"{clause.level} clause {clause.id} has no case"


def _case_problems(case: Case, limits: SpecLimits) -> Iterator[tuple[int, str]]:
    runs = expansion_count(case)
    if runs > limits.max_expansions:
        yield case.line, f"case {case.id}: params expand to {runs} runs, more than the limit of {limits.max_expansions}"
    bounds = CaseBounds(case, limits)
    for token in case.requires + case.unless:
        if not _known_token(token):
            yield case.line, f"case {case.id}: unknown capability {token!r}"
    for name in sorted(set(REPEAT_PLACEHOLDERS) & set(case.params)):
        yield case.line, f"case {case.id}: param {name!r} is reserved: a repeated step sets {{{name}}}"
    saved: set[str] = set()
    known = set(case.params)  # the placeholders a step may name: the params, and after a repeated step its count
    for index, step in enumerate(case.steps):
        line = step.line or case.line
        where = f"case {case.id} step {index + 1}"
        if len(step.named) != 1:
            yield line, f"{where}: a step names exactly one operation or fault, found {list(step.named) or 'none'}"
            continue
        if step.extra:
            yield line, f"{where}: a fault step takes no expect or save"
        args = {} if step.is_fault else step.args
        for key in sorted(set(args) - STEP_ARGS - KNOWN_PAIRS):
            yield line, f"{where}: unknown pair {key!r} on {step.op}"
        for ref in _refs(args.get("obj")):
            if ref not in saved:
                yield line, f"{where}: ${ref} is used before a step saves it"
        for name in sorted(_placeholders([step.args, step.expect]) - known):
            why = "is used before a step repeats" if name in REPEAT_PLACEHOLDERS else "is not a param of the case"
            yield line, f"{where}: {{{name}}} {why}"
        yield from ((line, f"{where}: {problem}") for problem in _repeat_problems(step, case))
        for problem in [*bounds.path_problems(args), *bounds.size_problems(step)]:
            yield line, f"{where}: {problem}"
        for alt in [step.expect, *step.expect.get("one_of", ())]:
            for key in ("error", "not_error"):
                names = alt.get(key, [])
                for name in [names] if isinstance(names, str) else names:
                    if name not in ERRORS:
                        yield line, f"{where}: unknown error class {name!r}"
        if step.save is not None:
            saved.add(step.save)
        if step.repeats:
            known |= set(REPEAT_PLACEHOLDERS)


def _repeat_problems(step: Step, case: Case) -> Iterator[str]:
    """A repeated step needs a path to number; a count named by a placeholder needs a whole number."""
    if step.repeats and not isinstance(step.args.get("path"), str):
        yield f"repeat needs a step with a path to number (path-0, path-1, ...), not {step.op or 'this step'}"
    count = step.expect.get("paths", {}).get("count")
    name = count[1:-1] if isinstance(count, str) else None
    values = case.params.get(name, {}).values() if name else ()
    bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        yield f"paths count {count} must stand for a whole number, not {bad[0]!r}"


def _known_token(token: str) -> bool:
    head, _, rest = token.partition(".")
    if not rest:
        return head in OPERATIONS
    if head == "limit":
        return rest in KNOWN_LIMITS
    if head == "feature":
        return rest in KNOWN_FEATURES
    return head in OPERATIONS and rest in KNOWN_PAIRS


def _refs(value: Any) -> list[str]:
    return [value[1:]] if isinstance(value, str) and value.startswith("$") else []


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*map(_placeholders, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_placeholders, value)) if value else set()
    return set()
