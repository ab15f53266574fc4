"""The invariants judge one step on their own clauses; verdicts count those clauses at their own level and spec."""

from __future__ import annotations

from conformance import errors
from conformance.driver import Mode, Object
from conformance.engine import invariants
from conformance.redact import Redactor
from conformance.spec.loader import load_specs, spec_files
from conformance.verdict import compute

PATH = "gspc-run/errors/case/0/object"


def _clauses(op: str, outcome: tuple, redactor: Redactor | None = None, args: dict | None = None) -> list[str]:
    found = invariants.check(op, PATH, args or {"path": PATH}, outcome, redactor or Redactor({}))
    return [b.clause for b in found]


def test_raw_exception_fails_taxonomy() -> None:
    assert _clauses("commit_append", (None, KeyError("session"))) == ["errors.taxonomy"]


def test_envelope_checked_on_every_error() -> None:
    assert _clauses("stat", (None, errors.ObjectNotExist(op="stat", path=PATH))) == []
    assert _clauses("stat", (None, errors.ObjectNotExist(op="read", path=PATH))) == ["errors.envelope"]
    assert _clauses("write_append", (None, errors.ObjectModeInvalid(op="write_append", path=PATH))) == [
        "errors.envelope"
    ]


def test_result_types_and_paths() -> None:
    assert _clauses("write", (None, None)) == ["storager.result-types"]
    assert _clauses("write", (Object(path="elsewhere"), None)) == ["storager.result-types"]
    assert _clauses("read", ("text", None)) == ["storager.result-types"]
    assert _clauses("write_append", (True, None)) == ["storager.result-types"]
    renamed = Object(path="gspc-other/x", mode=Mode.APPEND | Mode.READ)
    assert _clauses("create_append", (renamed, None)) == ["append.no-autorename"]
    assert _clauses("create_append", (Object(path=PATH, mode=Mode.READ), None)) == ["append.create-mode"]
    outside = [Object(path="gspc-run/errors/case/0/a/bc")]
    assert _clauses("list", (outside, None), args={"prefix": "gspc-run/errors/case/0/a/b/"}) == [
        "storager.result-types"
    ]


def test_write_reports_the_size_written() -> None:
    written = {"path": PATH, "data": b"12345"}
    assert _clauses("write", (Object(path=PATH, size=5), None), args=written) == []
    assert _clauses("write", (Object(path=PATH), None), args=written) == []  # no size: the driver does not say
    assert _clauses("write", (Object(path=PATH, size=0), None), args=written) == ["storager.result-types"]
    assert _clauses("write", (Object(path=PATH, size="5"), None), args=written) == ["storager.result-types"]


def test_echoed_secret() -> None:
    redactor = Redactor({})
    key = bytes(range(32))
    redactor.add(key)
    echoed = Object(path=PATH, system={"key": key.hex()})
    assert _clauses("stat", (echoed, None), redactor) == ["errors.no-secret-echo"]
    message = errors.PermissionDenied(f"bad key {key.hex()}", op="stat", path=PATH)
    assert _clauses("stat", (None, message), redactor) == ["errors.no-secret-echo"]


def test_invariant_clauses_exist_in_the_bundled_specs() -> None:
    known = {c for spec in load_specs(spec_files()) for c in spec.clauses}
    names = (invariants.TAXONOMY, invariants.ENVELOPE, invariants.RESULTS, invariants.RENAME, invariants.SECRETS)
    assert set(names) <= known


def test_every_impl_case_names_its_rule() -> None:
    """An IMPL case says which clause an outcome outside its alternatives fails, and that clause is not IMPL."""
    clauses = invariants.clauses()
    for spec in load_specs(spec_files()):
        for case in spec.cases:
            if spec.clauses[case.clause].level != "IMPL":
                continue
            named = [s.expect["otherwise"] for s in case.steps if "otherwise" in s.expect]
            assert named, f"{case.id} names no otherwise clause"
            assert all(clauses[n][1].level != "IMPL" for n in named)


def test_verdict_counts_an_invariant_in_its_own_spec() -> None:
    """A delete case that passed its clause but broke errors.taxonomy leaves delete conformant, errors not."""
    breach = {"clause": "errors.taxonomy", "spec": "errors", "rule": "ERR-3", "level": "MUST", "step": 1,
              "op": "write", "expected": "a taxonomy error", "actual": "raw KeyError"}  # fmt: skip
    record = {"target": "t", "spec": "delete", "clause": "delete.removes", "level": "MUST", "case": "c",
              "outcome": "failed", "failure": {"step": 1, "op": "write", "expected": "", "actual": "",
                                               "clauses": [breach]}}  # fmt: skip
    verdicts = {v.spec: v for v in compute([record])}
    assert verdicts["delete"].verdict == "conformant"
    assert verdicts["errors"].verdict == "non-conformant"
    assert verdicts["errors"].failed == {"errors.taxonomy": {"c"}}
