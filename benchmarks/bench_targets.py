"""Suite time per bundled target, serial and under ``-n 2`` (pytest-xdist), through ``gspc run``.

Run: python benchmarks/bench_targets.py [--targets memory fs s3@moto ...] [--repeat 1]
Prints a Markdown table: items, outcomes and wall time per target and mode (best of --repeat, and the
spread: best to worst).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

TARGETS = ["memory", "fs", "s3@moto", "s3@moto-server", "s3@ministack", "dropbox@emulator"]


def run(target: str, workers: str | None, work: Path) -> tuple[float, Counter]:
    """Wall seconds of one `gspc run` and its outcome counts."""
    out = work / f"{target.replace('@', '-')}-{workers or 'serial'}"
    command = [sys.executable, "-m", "conformance", "run", "--target", target, "--out", str(out)]
    if workers:
        command += ["-n", workers]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{target}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return elapsed, Counter(summary["totals"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print("| target | items | passed / observed / n/a / waived / failed | serial | -n 2 |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            serial = [run(target, None, Path(tmp)) for _ in range(args.repeat)]
            parallel = [run(target, "2", Path(tmp)) for _ in range(args.repeat)]
            counts = serial[0][1]
            split = " / ".join(str(counts[k]) for k in ("passed", "observed", "not-applicable", "waived", "failed"))
            print(f"| {target} | {sum(counts.values())} | {split} | {_times(serial)} | {_times(parallel)} |")


def _times(runs: list[tuple[float, Counter]]) -> str:
    """The best wall time, and the spread when there were several runs."""
    times = sorted(elapsed for elapsed, _ in runs)
    return f"{times[0]:.1f} s" + (f" ({times[0]:.1f}-{times[-1]:.1f})" if len(times) > 1 else "")


if __name__ == "__main__":
    main()
