"""The documented GitHub Actions workflow: valid YAML whose gspc commands the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from conformance.cli import _parser

WORKFLOW = Path(__file__).parent.parent / "docs" / "github-actions.yml"


def _gspc_commands() -> list[list[str]]:
    """Every ``gspc ...`` line of the workflow's run scripts, with shell and Actions variables filled in."""
    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    commands = []
    for job in jobs.values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                line = re.sub(r"\$\{\{[^}]*\}\}|\"?\$\w+\"?", "x", line.split(">")[0].strip())
                if line.startswith("gspc "):
                    commands.append(shlex.split(line)[1:])
    return commands


def test_the_workflow_runs_merges_and_judges() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    assert jobs["run"]["strategy"]["fail-fast"] is False and jobs["merge"]["needs"] == "run"
    assert [c[0] for c in _gspc_commands()] == ["run", "report"]


def test_every_gspc_command_in_the_workflow_parses() -> None:
    for argv in _gspc_commands():
        args = _parser().parse_args(argv)  # argparse exits (SystemExit) on an unknown option
        assert args.handler is not None
