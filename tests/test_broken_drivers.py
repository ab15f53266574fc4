"""The specs catch every broken driver by exactly the clauses it breaks, and memory by none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conformance.records import failed_clauses
from conformance.spec.loader import load_specs, spec_files

TESTS = Path(__file__).resolve().parent
SPECS = TESTS.parent / "specs"
sys.path.insert(0, str(TESTS))

import broken_drivers  # noqa: E402 - found through the path above, as the harness finds it
import first_page_drivers  # noqa: E402
import invariant_drivers  # noqa: E402

CONTROLS = {"memory": set(), "broken_drivers:FaultyMemory": set()}
BROKEN = {
    f"broken_drivers:{cls.__name__}": set(cls.breaks)
    for cls in broken_drivers.BROKEN
    if cls is not broken_drivers.FaultyMemory
}
BROKEN |= {f"invariant_drivers:{cls.__name__}": set(cls.breaks) for cls in invariant_drivers.BROKEN}
TARGETS = CONTROLS | BROKEN
#: Drivers that read only a listing's first page, on every backend the harness starts that pages.
FIRST_PAGE = {
    f"first_page_drivers:{cls.__name__}@{backend}": set(cls.breaks)
    for cls, backends in [
        (first_page_drivers.FirstPageS3, ["moto", "moto-server", "ministack"]),
        (first_page_drivers.FirstPageDropbox, ["emulator"]),
    ]
    for backend in backends
}
# one harness run over every target: minutes on a shared 2-core machine, past the default timeout
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="session")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Every record of one harness run over all specs, with memory and every broken driver as targets."""
    out = tmp_path_factory.mktemp("broken")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(SPECS)]
    command += ["-c", os.devnull, "-q", "-n", "2", "--gspc-out", str(out)]
    command += [arg for target in TARGETS for arg in ("--gspc-target", target)]
    command += [str(p) for p in sorted(SPECS.glob("*.yaml"))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, timeout=900)
    path = out / "records.jsonl"
    assert path.exists(), f"no records (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _failed(records: list[dict]) -> dict[str, set[str]]:
    """Every clause each target failed: the clauses a record lists (invariants too), or its own clause."""
    found: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for clause in failed_clauses(record):
            found[record["target"]].add(clause["clause"])
    return found


def test_every_target_ran(records: list[dict]) -> None:
    """Each target ran every case, and no case broke the harness."""
    targets = {r["target"] for r in records}
    assert targets == set(TARGETS)
    errors = [f"{r['target']} {r['case']}: {r['reason']}" for r in records if r["outcome"] in ("error", "not-run")]
    assert errors == []


@pytest.mark.parametrize("target", sorted(CONTROLS))
def test_controls_pass(records: list[dict], target: str) -> None:
    """Memory (and memory behind the simulated fault proxy) fail no clause."""
    mine = [r for r in records if r["target"] == target]
    assert [f"{r['case']}{r['params']}: {r['failure']}" for r in mine if failed_clauses(r)] == []


@pytest.mark.parametrize("target", sorted(BROKEN))
def test_broken_driver_caught_by_its_clauses(records: list[dict], target: str) -> None:
    """A broken driver fails exactly the clauses it declares it breaks."""
    assert _failed(records).get(target, set()) == BROKEN[target]


def test_every_must_clause_is_tripped() -> None:
    """Each MUST clause of the bundled specs is broken by at least one broken driver."""
    tripped = set().union(*BROKEN.values())
    musts = {c.id for spec in load_specs(spec_files()) for c in spec.clauses.values() if c.level == "MUST"}
    assert sorted(musts - tripped) == []


def test_a_driver_reading_only_the_first_listing_page_is_caught_on_every_paging_backend(tmp_path: Path) -> None:
    """No page size set by the driver: the backend's own page (7) makes the listing case cross pages."""
    from conftest import gspc

    targets = [arg for target in FIRST_PAGE for arg in ("--target", target)]
    done = gspc("run", *targets, "--spec", "storager", "--out", "out", cwd=tmp_path, timeout=600)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    found = [json.loads(line) for line in (tmp_path / "out" / "records.jsonl").read_text().splitlines()]
    assert {target: clauses for target, clauses in _failed(found).items()} == FIRST_PAGE
    paged = {r["target"]: r["failure"] for r in found if r["case"] == "list-pages"}
    assert {target: failure["expected"] for target, failure in paged.items()} == dict.fromkeys(
        FIRST_PAGE,
        "listing including 'many/obj-22'",  # 3 pages of 7 and 2 more: the last is past the first page
    )
    assert all(0 < failure["actual"].count("many/obj-") <= 7 for failure in paged.values()), paged
