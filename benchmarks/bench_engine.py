"""Engine cost: the memory suite against trivial parametrized tests, and collecting 10,000 cases.

Run: python benchmarks/bench_engine.py [--repeat 3]
Prints a Markdown table. Times are pytest's own session time (collection + run, the
"in N s" it prints) and the process wall time, each the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conformance.cli import PLUGINS
from conformance.spec.loader import bundled_specs_dir, spec_files

# The plugin set of `gspc run`, for the suite and the baseline alike (nothing else installed interferes).
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null", *PLUGINS]
ENV = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, pytest's own session seconds: collection and run, without interpreter start-up)."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    session = re.findall(r" in ([0-9.]+)s", done.stdout)
    return elapsed, float(session[-1]) if session else elapsed


def best(repeat: int, args: list[str], cwd: Path) -> tuple[float, float]:
    return min((timed(args, cwd) for _ in range(repeat)), key=lambda t: t[1])


def suite_items(work: Path) -> int:
    """How many items the memory suite has (collect only)."""
    args = [*PYTEST, "--rootdir", str(bundled_specs_dir()), *map(str, spec_files()), "--gspc-target", "memory",
            "--gspc-out", str(work / "collect"), "--collect-only"]  # fmt: skip
    out = subprocess.run(args, cwd=work, env=ENV, capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if "::" in line)


def baseline_file(work: Path, count: int) -> Path:
    path = work / "test_baseline.py"
    path.write_text(
        f"import pytest\n\n\n@pytest.mark.parametrize('i', range({count}))\ndef test_trivial(i):\n    assert i >= 0\n"
    )
    return path


def same_work_file(work: Path, count: int) -> Path:
    """Hand-written parametrized tests doing what each generated case does: write, read back, delete."""
    path = work / "test_same_work.py"
    path.write_text(
        "import pytest\nfrom conformance.adapters.memory import MemoryDriver\n\nDRIVER = MemoryDriver()\n\n\n"
        f"@pytest.mark.parametrize('n', range({count}))\n"
        "def test_same_work(n):\n"
        "    DRIVER.write(f'x{n}', b'content')\n"
        "    assert DRIVER.read(f'x{n}') == b'content'\n"
        "    DRIVER.delete(f'x{n}')\n"
    )
    return path


def generated_spec(work: Path, cases: int, name: str) -> Path:
    """A spec with `cases` items for one target (cases / 10 cases x 10 params): write, read back."""
    folder = work / name
    folder.mkdir()
    lines = [
        "id: GSP-9999", "title: Generated", "version: 1", "source: benchmark", "clauses:",
        "  - {id: gen.one, rule: DEL-1, level: MUST, status: adopted, text: Generated., source: benchmark}",
        "cases:",
    ]  # fmt: skip
    for i in range(cases // 10):
        lines += [
            f"  - id: case-{i}",
            "    clause: gen.one",
            "    title: Generated case.",
            "    params: {n: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}",
            "    steps:",
            '      - write: {path: "x{n}", data: content}',
            '      - read: {path: "x{n}"}',
            "        expect: {bytes: content}",
        ]
    path = folder / "generated.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items = suite_items(work)
        base_wall, base = best(args.repeat, [*PYTEST, str(baseline_file(work, items))], work)
        suite_args = [*PYTEST, "--rootdir", str(bundled_specs_dir()), *map(str, spec_files()),
                      "--gspc-target", "memory", "--gspc-out", str(work / "out")]  # fmt: skip
        suite_wall, suite = best(args.repeat, suite_args, work)
        same = generated_spec(work, 2_000, "same")
        same_args = [*PYTEST, "--rootdir", str(same.parent), str(same), "--gspc-target", "memory",
                     "--gspc-out", str(work / "same-out")]  # fmt: skip
        engine_wall, engine = best(args.repeat, same_args, work)
        hand_wall, hand = best(args.repeat, [*PYTEST, str(same_work_file(work, 2_000))], work)
        spec = generated_spec(work, 10_000, "generated")
        collect_args = [*PYTEST, "--rootdir", str(spec.parent), str(spec), "--gspc-target", "memory",
                        "--gspc-out", str(work / "gen"), "--collect-only"]  # fmt: skip
        collect_wall, collect = best(args.repeat, collect_args, work)
    figures = {
        "items": items,
        "suite_session_s": suite,
        "suite_wall_s": round(suite_wall, 3),
        "baseline_session_s": base,
        "baseline_wall_s": round(base_wall, 3),
        "per_case_ms": round(suite / items * 1000, 3),
        "per_baseline_ms": round(base / items * 1000, 3),
        "ratio": round(suite / base, 2),
        "same_work_2000_engine_session_s": engine,
        "same_work_2000_handwritten_session_s": hand,
        "same_work_ratio": round(engine / hand, 2),
        "collect_10000_session_s": collect,
        "collect_10000_wall_s": round(collect_wall, 3),
    }
    print("| figure | value | target |\n|---|---|---|")
    print(f"| memory suite: items (all bundled specs) | {items} | |")
    print(f"| memory suite: pytest session / wall | {suite:.2f} s / {suite_wall:.2f} s | |")
    print(f"| trivial parametrized baseline, same item count: session / wall | {base:.2f} s / {base_wall:.2f} s | |")
    print(f"| per-case cost: suite vs baseline | {figures['per_case_ms']} ms vs {figures['per_baseline_ms']} ms | |")
    print(f"| ratio suite / trivial baseline (the suite moves 5 MiB payloads) | {figures['ratio']}x | |")
    print(f"| 2,000 generated cases (write, read, cleanup): session / wall | {engine:.2f} s / {engine_wall:.2f} s | |")
    print(f"| 2,000 hand-written parametrized tests, same calls: session / wall | {hand:.2f} s / {hand_wall:.2f} s | |")
    print(f"| per-case cost ratio, generated / hand-written | {figures['same_work_ratio']}x | <= 1.5x |")
    print(f"| collect 10,000 generated cases: session / wall | {collect:.2f} s / {collect_wall:.2f} s | <= 3 s |")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
