"""The waiver rule on its own: a record is waived only when every clause it failed is covered."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from conformance.spec.loader import load_specs, spec_files
from conformance.waivers import Waiver, check_waivers, judge

TODAY = dt.date(2026, 6, 1)
OWN = {"clause": "append.complete", "spec": "append", "level": "MUST", "step": 2, "op": "write_append"}
TAXONOMY = {"clause": "errors.taxonomy", "spec": "errors", "level": "MUST", "step": 2, "op": "write_append"}


def waiver(**fields: object) -> Waiver:
    return Waiver(**{"target": "memory", "reason": "r", "link": "https://example.test/1", "file": "K", **fields})


def verdict(waivers: list[Waiver], failed: list[dict]) -> tuple[str, str | None, list[str]]:
    judged = judge(waivers, "memory", "append", "append-case", "append.complete", failed, TODAY)
    return judged.outcome, judged.reason, sorted(judged.covered)


def test_a_clause_waiver_alone_leaves_the_invariant_failed_and_says_which_is_which() -> None:
    outcome, reason, covered = verdict([waiver(clause="append.complete")], [OWN, TAXONOMY])
    assert (outcome, covered) == ("failed", ["append.complete"])
    assert reason == "waived: append.complete (known issue: r (https://example.test/1)); not waived: errors.taxonomy"


def test_a_waiver_of_the_invariant_clause_alone_leaves_the_own_clause_failed() -> None:
    outcome, reason, covered = verdict([waiver(clause="errors.taxonomy", reason="raw errors")], [OWN, TAXONOMY])
    assert (outcome, covered) == ("failed", ["errors.taxonomy"])
    assert reason and reason.endswith("; not waived: append.complete")


def test_waivers_of_both_clauses_make_it_waived_naming_both_issues() -> None:
    both = [waiver(clause="append.complete", reason="sizes"), waiver(clause="errors.taxonomy", reason="raw")]
    outcome, reason, covered = verdict(both, [OWN, TAXONOMY])
    assert (outcome, covered) == ("waived", ["append.complete", "errors.taxonomy"])
    assert reason == ("waived: append.complete (known issue: sizes (https://example.test/1)); "
                      "errors.taxonomy (known issue: raw (https://example.test/1))")  # fmt: skip


def test_an_invariant_waiver_may_name_the_spec_of_its_clause_or_of_the_case_but_no_other() -> None:
    assert verdict([waiver(spec="errors", clause="errors.taxonomy")], [TAXONOMY])[0] == "waived"
    assert verdict([waiver(spec="append", clause="errors.taxonomy")], [TAXONOMY])[0] == "waived"
    assert verdict([waiver(spec="delete", clause="errors.taxonomy")], [TAXONOMY])[0] == "failed"


def test_a_case_waiver_covers_every_clause_of_its_case_only() -> None:
    outcome, reason, covered = verdict([waiver(case="append-case")], [OWN, TAXONOMY])
    assert (outcome, covered) == ("waived", ["append.complete", "errors.taxonomy"])
    assert reason == "waived: append.complete, errors.taxonomy (known issue: r (https://example.test/1))"
    assert verdict([waiver(case="append-case")], [TAXONOMY])[1] == "known issue: r (https://example.test/1)"
    assert verdict([waiver(case="other-case")], [OWN, TAXONOMY])[0] == "failed"


def test_an_expired_waiver_covers_nothing_and_says_so() -> None:
    old = dt.date(2026, 1, 1)
    outcome, reason, covered = verdict([waiver(clause="errors.taxonomy", expires=old)], [TAXONOMY])
    assert (outcome, reason, covered) == ("failed", "waiver expired on 2026-01-01", [])
    outcome, reason, _ = verdict([waiver(clause="append.complete"), waiver(clause="errors.taxonomy", expires=old)],
                                 [OWN, TAXONOMY])  # fmt: skip
    assert outcome == "failed" and reason is not None
    assert reason.endswith("not waived: errors.taxonomy; waiver expired on 2026-01-01")


def test_a_passing_case_under_a_waiver_of_its_clause_is_unexpectedly_passed_but_not_under_an_invariant_one() -> None:
    assert verdict([waiver(clause="append.complete")], [])[0] == "unexpectedly-passed"
    assert verdict([waiver(case="append-case")], [])[0] == "unexpectedly-passed"
    assert verdict([waiver(clause="errors.taxonomy")], []) == ("passed", None, [])


def test_the_record_shows_the_own_waiver_first_else_the_first_that_covered() -> None:
    judged = judge([waiver(clause="errors.taxonomy", reason="raw")], "memory", "append", "append-case",
                   "append.complete", [OWN, TAXONOMY], TODAY)  # fmt: skip
    assert (
        judged.waiver is not None and judged.waiver["reason"] == "raw" and judged.waiver["covers"] == "errors.taxonomy"
    )
    judged = judge([waiver(clause="errors.taxonomy", reason="raw"), waiver(case="append-case", reason="all")],
                   "memory", "append", "append-case", "append.complete", [OWN, TAXONOMY], TODAY)  # fmt: skip
    assert judged.waiver is not None and judged.waiver["covers"] == "all"
    assert judged.covered["errors.taxonomy"]["reason"] == "raw" and judged.covered["append.complete"]["reason"] == "all"


def test_check_waivers_accepts_an_invariant_clause_with_any_spec_or_case(tmp_path: Path) -> None:
    specs = load_specs(spec_files())
    case = next(c for s in specs if s.name == "append" for c in s.cases)
    impl = next(c for s in specs for c in s.cases if any("otherwise" in step.expect for step in c.steps))
    otherwise = next(step.expect["otherwise"] for step in impl.steps if "otherwise" in step.expect)
    accepted = [
        waiver(clause="errors.envelope"),  # checked only as an invariant: no case of its own
        waiver(spec="append", clause="errors.taxonomy"),
        waiver(case=case.id, clause="errors.envelope"),
        waiver(case=impl.id, clause=otherwise),
    ]
    assert check_waivers(accepted, specs, {"memory"}) == []
    refused = [
        waiver(spec="append", clause="errors.not-exist", line=7),
        waiver(case=case.id, clause="delete.missing-ok"),
    ]
    assert check_waivers(refused, specs, {"memory"}) == [
        "K:7: no clause 'errors.not-exist' in spec append",
        f"K:0: case {case.id!r} checks clause {case.clause}, not delete.missing-ok",
    ]
