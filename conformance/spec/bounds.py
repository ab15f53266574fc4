"""Lint checks that look through a case's params: paths stay confined, runs and payloads stay under the caps."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from conformance.engine.payloads import SizeError, is_data, measure, parse_size
from conformance.spec.limits import SpecLimits
from conformance.spec.model import PLACEHOLDER, Case, Step, substitute
from conformance.spec.paths import path_problem

_LEFT = {"start": "", "slash": "x/", "mid": "x"}  # what stands before a placeholder, reduced to its kind
_RIGHT = {"end": "", "slash": "/x", "mid": "x"}


def expansion_count(case: Case) -> int:
    """How many runs a case's params make, without expanding them."""
    return math.prod(len(values) for values in case.params.values())


class CaseBounds:
    """The path and size checks of one case; verdicts per param value are computed once per case."""

    def __init__(self, case: Case, limits: SpecLimits) -> None:
        self.case = case
        self.limits = limits
        self._paths: dict[tuple[str, str, str, bool], list[tuple[str, str]]] = {}
        self._sizes: dict[str, list[str]] = {}
        self._largest: dict[str, Any] | None = None

    def path_problems(self, args: Mapping[str, Any]) -> Iterator[str]:
        """Why a path, prefix or obj path of a step, with any param value in place, leaves the case prefix."""
        for key, template in _addressed(args):
            prefix = key == "prefix"
            problem = path_problem(PLACEHOLDER.sub("x", template), prefix=prefix)
            if problem:
                yield f"{key} {template!r} {problem}"
                continue
            for match in PLACEHOLDER.finditer(template):
                name = match.group(1)
                bad = self._bad_path_values(name, _context(template, match), prefix)
                if bad:
                    label, value = bad[0]
                    filled = PLACEHOLDER.sub(lambda m, v=value, n=name: v if m.group(1) == n else "x", template)
                    why = path_problem(filled, prefix=prefix) or path_problem(value, prefix=prefix)
                    more = f" (and {len(bad) - 1} more values of {name})" if len(bad) > 1 else ""
                    shown = f"{label!r}" if label == value else f"{label!r} ({value!r})"
                    yield f"{key} {template!r} with {name}={shown} {why}{more}"

    def size_problems(self, step: Step) -> Iterator[str]:
        """Sizes and payloads of a step (arguments and expectations) that are malformed or over the cap."""
        args = {} if step.is_fault else step.args
        datas = [v for k, v in args.items() if k == "data" or is_data(v)]
        expect = step.expect
        sizes = []
        for alt in [expect, *expect.get("one_of", ())]:
            sizes += [alt[k] for k in ("size", "value") if k in alt]
            datas += [alt["bytes"]] if "bytes" in alt else []
            datas += [m["md5_b64"] for m in alt.get("system", {}).values() if isinstance(m, dict) and "md5_b64" in m]
        for value in sizes:
            yield from self._size_problems(value)
        for data in datas:
            yield from self._data_problems(data)

    def _bad_path_values(self, name: str, context: tuple[str, str], prefix: bool) -> list[tuple[str, str]]:
        key = (name, *context, prefix)
        if key not in self._paths:
            left, right = _LEFT[context[0]], _RIGHT[context[1]]
            self._paths[key] = [
                (label, str(value))
                for label, value in self.case.params.get(name, {}).items()
                if path_problem(left + str(value) + right, prefix=prefix)
            ]
        return self._paths[key]

    def _size_problems(self, value: Any) -> list[str]:
        template = str(value)
        if template not in self._sizes:
            self._sizes[template] = list(self._judge_size(value))
        return self._sizes[template]

    def _judge_size(self, value: Any) -> Iterator[str]:
        names = set(PLACEHOLDER.findall(value)) if isinstance(value, str) else set()
        if names - set(self.case.params):
            return  # lint reports the unknown param
        whole = PLACEHOLDER.fullmatch(value) if names else None
        if whole:
            name = whole.group(1)
            for label, param in self.case.params[name].items():
                if why := self._size_problem(param):
                    yield f"{value!r} with {name}={label!r}: {why}"
        elif names:  # a partial template would cost all its values again at every step
            yield f"a size takes a whole param ('{{name}}'), not {value!r}"
        elif why := self._size_problem(value):
            yield why

    def _size_problem(self, value: Any) -> str | None:
        try:
            size = parse_size(value)
        except SizeError as exc:
            return str(exc)
        cap = self.limits.max_payload
        return f"size {value!r} is {size} bytes, more than the limit of {cap}" if size > cap else None

    def _data_problems(self, data: Any) -> Iterator[str]:
        sizes = list(_data_sizes(data))
        problems = [p for value in sizes for p in self._size_problems(value)]
        yield from problems
        if problems:
            return
        try:  # with every param at its largest size: the total is an upper bound, and exact for one param
            measure(substitute(data, self._largest_params()), None, self.limits.max_payload)
        except SizeError as exc:
            yield f"data {str(exc).removeprefix('payload ')}"

    def _largest_params(self) -> dict[str, Any]:
        if self._largest is None:
            self._largest = {n: max(v.values(), key=_size_or_zero) for n, v in self.case.params.items()}
        return self._largest


def _size_or_zero(value: Any) -> int:
    try:
        return parse_size(value)
    except SizeError:
        return 0


def _addressed(args: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key in ("path", "prefix"):
        if isinstance(args.get(key), str):
            yield key, args[key]
    obj = args.get("obj")
    if isinstance(obj, dict) and isinstance(obj.get("path"), str):
        yield "obj path", obj["path"]


def _context(template: str, match: re.Match[str]) -> tuple[str, str]:
    before = template[: match.start()]
    after = template[match.end() :]
    left = "start" if not before else "slash" if before.endswith("/") else "mid"
    right = "end" if not after else "slash" if after.startswith("/") else "mid"
    return left, right


def _data_sizes(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for key in ("random", "offset", "size"):
            if key in data:
                yield data[key]
        for part in data.get("concat", ()):
            yield from _data_sizes(part)
        if "slice" in data:
            yield from _data_sizes(data["slice"])
