"""What a hung case costs: a run with one case that cannot be interrupted, against the same run without it.

Run: python benchmarks/bench_watchdog.py [--timeout 2] [--repeat 3]
The hung case blocks SIGALRM and sleeps (tests/unruly_drivers.py:DeafStat), so only the
supervisor's watchdog ends it; the cost beyond the case's own timeout is the grace period, the
kill and a fresh pytest process for the cases that had not run. Target: at most 5 s past the timeout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
SELECT = "delete-existing or delete-missing"


def run(driver: str, timeout: float, workers: list[str], work: Path) -> float:
    """Wall seconds of one `gspc run` of the selected delete cases."""
    command = [sys.executable, "-m", "conformance", "run", "--driver", driver, "--spec", "delete",
               "--timeout", str(timeout), "--out", str(work / "out"), *workers, "--", "-k", SELECT]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{driver}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| mode | run without the hang | run with one hung case | cost past the timeout |")
    print("|---|---|---|---|")
    for label, workers in (("serial", []), ("-n 2", ["-n", "2"])):
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            calm = min(run("memory", args.timeout, workers, work) for _ in range(args.repeat))
            hung = min(run("unruly_drivers:DeafStat", args.timeout, workers, work) for _ in range(args.repeat))
        print(f"| {label} | {calm:.2f} s | {hung:.2f} s | {hung - calm - args.timeout:.2f} s |")


if __name__ == "__main__":
    main()
