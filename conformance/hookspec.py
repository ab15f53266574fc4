"""The harness's own pytest hooks: how report plugins hear of cases and runs without importing the plugin."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_gspc_case_finished(item: pytest.Item, record: dict[str, Any]) -> None:
    """A case ended: ``record`` is its record as written (scrubbed and bounded by the run's redactor)."""


def pytest_gspc_run_finished(config: pytest.Config, summary: dict[str, Any]) -> None:
    """The run was judged (in the process that judges it): ``summary`` is summary.json's document."""
