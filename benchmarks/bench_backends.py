"""Shared backends under xdist: `gspc run` serial, `-n 2` and `-n 4`, on moto-server, the emulator, and with latency.

Run: python benchmarks/bench_backends.py [--repeat 1]
Prints a Markdown table: wall time (best of --repeat) per target and mode, and the speed-up over serial.
With ``--latency 50ms`` every request waits 50 ms in the fault proxy, as across a real network.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [("s3@moto-server", []), ("dropbox@emulator", []), ("s3@moto-server", ["--latency", "50ms"])]
MODES = [None, "2", "4"]


def run(target: str, extra: list[str], workers: str | None, work: Path) -> float:
    """Wall seconds of one `gspc run`; exits on a run that did not end conformant or with findings."""
    out = work / f"{target.replace('@', '-')}-{len(extra)}-{workers or 'serial'}"
    command = [sys.executable, "-m", "conformance", "run", "--target", target, "--out", str(out), *extra]
    if workers:
        command += ["-n", workers]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{target} {extra}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print("| target | serial | -n 2 | -n 4 | -n 4 vs serial |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="gspc-bench-") as tmp:
        for target, extra in CASES:
            times = [min(run(target, extra, mode, Path(tmp)) for _ in range(args.repeat)) for mode in MODES]
            label = " ".join([target, *extra])
            cells = " | ".join(f"{t:.1f} s" for t in times)
            print(f"| {label} | {cells} | {times[0] / times[2]:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
