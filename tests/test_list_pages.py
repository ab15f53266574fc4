"""The listing case writes past the target's page (or 1,001 objects where it names none) and cleans up every one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.adapters.memory import MemoryDriver
from conformance.driver import Object
from conformance.engine.case import execute
from conformance.engine.runner import CaseRun
from conformance.engine.tracker import Ledger, Tracker
from conformance.redact import Redactor
from conformance.spec.loader import bundled_specs_dir, load_spec
from conformance.spec.model import UNPAGED_COPIES

PREFIX = "gspc-RUN/storager/list-pages/0/"
CASE = next(c for c in load_spec(bundled_specs_dir() / "storager.yaml").cases if c.id == "list-pages")


class FirstPageMemory(MemoryDriver):
    """Lists only the first ``page`` objects, as a driver that ignores a continuation token would."""

    page = 7

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        listed = super().list(prefix, **pairs)
        return (obj for obj, _ in zip(listed, range(self.page), strict=False))


def run(driver: MemoryDriver, page_size: int | None, tmp_path: Path) -> tuple[CaseRun, list[dict[str, Any]]]:
    ledger = Ledger(tmp_path / "journal.jsonl", "RUN")
    tracker = Tracker(driver, "memory", PREFIX, ledger)
    done = execute(CASE, {}, tracker, driver.capabilities(), Redactor(environ={}), CaseRun(), list_page_size=page_size)
    ledger.close()
    return done, [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("page_size", "copies"), [(None, UNPAGED_COPIES), (7, 23), (2, 8)])
def test_the_case_writes_past_three_pages_and_cleans_up_every_object(
    tmp_path: Path, page_size: int | None, copies: int
) -> None:
    driver = MemoryDriver()
    done, journal = run(driver, page_size, tmp_path)
    assert done.failure is None and done.leftovers == []
    write, listing = done.steps
    assert write["repeat"] == copies and listing["result"]["objects"] == copies
    assert [e["event"] for e in journal] == ["created"] * copies + ["removed"] * copies
    assert list(driver.list("")) == []


def test_a_driver_reading_only_its_first_page_fails_the_case_on_a_paging_target(tmp_path: Path) -> None:
    done, _ = run(FirstPageMemory(), 7, tmp_path)
    assert done.failure["clauses"][0]["clause"] == "storager.list-exact"
    assert done.failure["expected"] == "listing including 'many/obj-22'" and done.leftovers == []
