"""Spec files: every problem is reported as file:line: message, never as a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests_support import write_spec

from conformance.spec.limits import SpecLimits
from conformance.spec.loader import SpecError, load_spec, load_specs, schema_checked, spec_files
from conformance.spec.model import UNPAGED_COPIES

GOOD = """\
id: GSP-99
title: Example
version: 1
source: here
clauses:
  - id: ex.one
    rule: DEL-1
    level: MUST
    status: adopted
    text: One.
    source: here
cases:
  - id: one
    clause: ex.one
    title: One holds.
    requires: [delete]
    steps:
      - delete: {path: x}
"""


#: A listing whose count follows a repeated step, and the step before it.
LISTED = '- list: {prefix: ""}\n        expect: {paths: {count: "{copies}", includes: ["x-{last_copy}"]}}'
PAGED = "- write: {path: x, data: d}\n        repeat: {pages: 3}\n      " + LISTED


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_specs([path])
    return caught.value.problems


def test_good_spec_loads(tmp_path: Path) -> None:
    (spec,) = load_specs([write_spec(tmp_path, GOOD)])
    assert spec.id == "GSP-99" and spec.cases[0].line == 13


def test_schema_error_names_the_line(tmp_path: Path) -> None:
    found = problems_of(tmp_path, GOOD.replace("level: MUST", "level: MUSTY"))
    assert found == [
        f"{tmp_path / 'ex.yaml'}:8: clauses/0/level: 'MUSTY' is not one of ['MUST', 'SHOULD', 'MAY', 'IMPL']"
    ]


def test_a_file_whose_content_passed_its_schema_in_the_starting_process_is_not_checked_again(tmp_path: Path) -> None:
    good = write_spec(tmp_path, GOOD, "good.yaml")
    code = f"""
import sys
from pathlib import Path
from conformance.spec import loader
loader.trust_schema_checked(sys.argv[1:])
spec = loader.load_spec(Path({str(good)!r}))
print('jsonschema' in sys.modules, loader.schema_checked() == sorted(sys.argv[1:]))
loader.load_spec(Path({str(good)!r}.replace('good', 'bad')))
"""
    checked = f"spec:{load_spec(good).sha256}"
    assert checked in schema_checked()
    write_spec(tmp_path, GOOD.replace("level: MUST", "level: OFTEN"), "bad.yaml")  # content that did not pass
    done = subprocess.run([sys.executable, "-c", code, checked], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "True"]  # an xdist worker told what passed never imports jsonschema
    assert "bad.yaml:8: clauses/0/level: 'OFTEN' is not one of" in done.stderr  # any other content is checked
    done = subprocess.run([sys.executable, "-c", code, f"known-issues:{checked[5:]}"], capture_output=True, text=True)
    assert done.stdout.split()[0] == "True"  # passing another schema does not count


def test_a_file_parsed_before_is_parsed_again_only_when_its_content_or_limits_change(tmp_path: Path) -> None:
    path = write_spec(tmp_path, GOOD)
    first = load_spec(path)
    assert load_spec(path) is first  # the same content and limits: parsed once
    assert load_spec(path, SpecLimits(max_expansions=5)) is not first
    path.write_text(GOOD.replace("title: Example", "title: Changed"), encoding="utf-8")
    assert load_spec(path).title == "Changed"
    path.write_text(GOOD.replace("level: MUST", "level: MUSTY"), encoding="utf-8")
    with pytest.raises(SpecError, match="MUSTY"):  # a bad file is never taken from what parsed before
        load_spec(path)


def test_misspelt_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, GOOD.replace("requires:", "requries:"))
    assert problem.startswith(f"{tmp_path / 'ex.yaml'}:16: cases/0: unknown key 'requries'")
    assert "requires" in problem


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, GOOD.replace("title: One holds.", "title: [unclosed"))
    assert problem.startswith(f"{tmp_path / 'ex.yaml'}:") and "invalid YAML" in problem


def test_duplicate_key_is_reported(tmp_path: Path) -> None:
    found = problems_of(tmp_path, GOOD.replace("version: 1\n", "version: 1\nversion: 2\n"))
    assert f"{tmp_path / 'ex.yaml'}:4: duplicate key 'version'" in found


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("clause: ex.one", "clause: ex.two"), "case one: unknown clause 'ex.two'"),
        (("{path: x}", "{path: x, colour: red}"), "case one step 1: unknown pair 'colour' on delete"),
        (("requires: [delete]", "requires: [delete.colour]"), "case one: unknown capability 'delete.colour'"),
        (("{path: x}", "{path: x}\n        expect: {error: NoSuchThing}"), "unknown error class 'NoSuchThing'"),
        (("- delete: {path: x}", "- commit_append: {obj: $o}"), "$o is used before a step saves it"),
        (("{path: x}", '{path: "{where}"}'), "{where} is not a param of the case"),
        (("- delete: {path: x}", "- save: o"), "a step names exactly one operation or fault"),
        (("- delete: {path: x}", LISTED), "step 1: {copies} is used before a step repeats"),
        (("- delete: {path: x}", "- list: {prefix: x/}\n        repeat: 2"), "step 1: repeat needs a step with a path"),
        (("params: {n:", "params: {copies: [1], n:"), "case one: param 'copies' is reserved"),
        (("- delete: {path: x}", LISTED.replace("copies", "n")), "count {n} must stand for a whole number, not 'x'"),
    ],
)
def test_lint_finds_semantic_problems(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    found = problems_of(tmp_path, GOOD.replace("requires:", "params: {n: [2, x]}\n    requires:").replace(*change))
    assert any(message in p and p.startswith(f"{tmp_path / 'ex.yaml'}:") for p in found), found


def test_must_clause_without_case_fails_lint(tmp_path: Path) -> None:
    extra = textwrap.indent(
        "- id: ex.two\n  rule: DEL-2\n  level: SHOULD\n  status: adopted\n  text: Two.\n  source: here\n", "  "
    )
    found = problems_of(tmp_path, GOOD.replace("cases:\n", extra + "cases:\n"))
    assert f"{tmp_path / 'ex.yaml'}:1: SHOULD clause ex.two has no case" in found


def test_duplicate_clause_id(tmp_path: Path) -> None:
    clause = GOOD[GOOD.index("  - id: ex.one") : GOOD.index("cases:")]
    with pytest.raises(SpecError, match=r"ex.yaml:12: duplicate clause id 'ex.one'"):
        load_spec(write_spec(tmp_path, GOOD.replace("cases:\n", clause + "cases:\n")))


def test_bundled_specs_are_clean() -> None:
    specs = load_specs(spec_files())
    assert {s.name for s in specs} >= {"delete"}
    assert len({s.id for s in specs}) == len(specs)


def test_a_step_repeated_by_pages_runs_past_the_targets_page_and_names_its_count(tmp_path: Path) -> None:
    (spec,) = load_specs([write_spec(tmp_path, GOOD.replace("- delete: {path: x}", PAGED))])
    write, listing = spec.cases[0].steps
    assert (write.repeat, write.repeat_pages, write.repeats) == (None, 3, True)
    assert [write.copies(7), write.copies(None), listing.copies(7)] == [23, UNPAGED_COPIES, 1]
    assert not listing.repeats


@pytest.mark.parametrize("repeat", ["{pages: 0}", "{pages: 11}", "{pages: 3, more: 1}", "{}", "1", "2001"])
def test_a_repeat_out_of_bounds_is_a_schema_problem(tmp_path: Path, repeat: str) -> None:
    found = problems_of(tmp_path, GOOD.replace("- delete: {path: x}", PAGED.replace("{pages: 3}", repeat)))
    assert any(":19: cases/0/steps/0/repeat" in p for p in found), found


@pytest.mark.parametrize(
    ("repeat", "said"),
    [
        ("{pages: 0}", "repeat: pages: 0 is less than the minimum of 1"),
        ('{pages: "x"}', "repeat: pages: 'x' is not of type 'integer'"),
        ("{pages: 3, more: 1}", "repeat: unknown key 'more' (allowed: pages)"),
        ("1", "repeat: 1 is less than the minimum of 2"),
    ],
)
def test_a_repeat_problem_is_said_in_the_form_it_was_written(tmp_path: Path, repeat: str, said: str) -> None:
    """Of the two forms of repeat, the message is that of the one the value has (not 'a dict is no integer')."""
    found = problems_of(tmp_path, GOOD.replace("- delete: {path: x}", PAGED.replace("{pages: 3}", repeat)))
    assert [p.split(": ", 1)[1] for p in found if "steps/0/repeat" in p] == [f"cases/0/steps/0/{said}"], found


def test_a_count_is_a_number_or_one_placeholder(tmp_path: Path) -> None:
    found = problems_of(tmp_path, GOOD.replace("- delete: {path: x}", PAGED.replace('"{copies}"', '"{copies}s"')))
    assert any("cases/0/steps/1/expect/paths/count" in p for p in found), found
