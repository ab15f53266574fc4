"""The README tells the truth: its sample matrix is what a default ``gspc run`` prints."""

from __future__ import annotations

from pathlib import Path

from conftest import gspc

README = Path(__file__).parent.parent / "README.md"


def _readme_matrix() -> list[str]:
    """The first code block of "What the output means": the matrix, its legend and its reasons."""
    text = README.read_text(encoding="utf-8").split("## What the output means", 1)[1]
    block = text.split("```\n", 2)[1]
    return block.rstrip("\n").splitlines()


def _printed_matrix(stdout: str) -> list[str]:
    """The matrix a run printed: from its header to the line before the behaviours or the counts."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("target "))
    end = next(i for i, line in enumerate(lines) if line.startswith(("implementation-defined", "cases: ")))
    return lines[start:end]


def test_the_readme_matrix_is_what_a_default_run_prints(tmp_path: Path) -> None:
    done = gspc("run", cwd=tmp_path, timeout=600)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert _printed_matrix(done.stdout) == _readme_matrix(), "update the README's sample from a default gspc run"
    counts = next(line for line in done.stdout.splitlines() if line.startswith("cases: "))
    assert counts in README.read_text(encoding="utf-8")


def test_run_help_says_what_runs_by_default_and_where_pytest_arguments_go(tmp_path: Path) -> None:
    text = " ".join(gspc("run", "--help", cwd=tmp_path).stdout.split())
    assert "By default every spec runs against every bundled target that can run here" in text
    assert "pytest arguments go after --" in text
