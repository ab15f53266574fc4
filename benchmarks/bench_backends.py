"""Shared backends under xdist: `gspc run` serial, `-n 2` and `-n 4`, on moto-server, the emulator, and with latency.

Run: python benchmarks/bench_backends.py [--repeat 1] [--only latency]
Prints a Markdown table: wall time (the median of --repeat rounds, each round running every mode once)
per target and mode, the CPU seconds of every process of that run (gspc, pytest, workers, the backend),
and the speed-up over serial (the median of the rounds' own ratios, and their range); then, per run,
where the wall time went: start-up (until the last worker has its target open), cases (until the last
worker is done) and wind-down (until gspc exits). The load average at the start and end is printed too.
With ``--latency 50ms`` every request waits 50 ms in the fault proxy, as across a real network.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CASES = {
    "moto-server": ("s3@moto-server", []),
    "emulator": ("dropbox@emulator", []),
    "latency": ("s3@moto-server", ["--latency", "50ms"]),
}
MODES = [None, "2", "4"]


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of every process the run started
    phases: dict[str, float]  # seconds from launch: "opened" (last target open), "done" (last process done)


def run(target: str, extra: list[str], workers: str | None, work: Path) -> Run:
    """One `gspc run`; exits on a run that did not end conformant or with findings."""
    out = work / f"{target.replace('@', '-')}-{len(extra)}-{workers or 'serial'}"
    command = [sys.executable, "-m", "conformance", "run", "--target", target, "--out", str(out), *extra]
    if workers:
        command += ["-n", workers]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched, start = time.time(), time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pytest child reaps its workers, so they count
    if done.returncode not in (0, 1):
        raise SystemExit(f"{target} {extra}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Run(elapsed, cpu, _phases(out, launched))


def _phases(out: Path, launched: float) -> dict[str, float]:
    """When the last case-running process had its target open, and when the last one was done."""
    events = [json.loads(line) for path in (out / "progress").glob("*.jsonl") for line in path.open()]
    runners = {e["process"] for e in events if e["process"] != "main"} or {"main"}  # the workers, or serial
    ends: dict[str, float] = {}
    for name in ("opened", "done"):
        times = [e["at"] for e in events if e["event"] == name and e["process"] in runners]
        if times:
            ends[name] = max(times) - launched
    return ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="rounds, each running every mode once (default 1)")
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="run only these rows; repeatable")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| target | serial | -n 2 | -n 4 | -n 4 vs serial |\n|---|---|---|---|---|")
    notes = []
    with tempfile.TemporaryDirectory(prefix="gspc-bench-") as tmp:
        for key in args.only or list(CASES):
            target, extra = CASES[key]
            # modes interleaved round by round, so a busier minute of a shared machine slows all of them alike
            rounds = [[run(target, extra, mode, Path(tmp)) for mode in MODES] for _ in range(args.repeat)]
            runs = [_median([r[i] for r in rounds]) for i in range(len(MODES))]
            ratios = sorted(r[0].wall / r[2].wall for r in rounds)
            label = " ".join([target, *extra])
            cells = " | ".join(f"{r.wall:.1f} s ({r.cpu:.1f} s CPU)" for r in runs)
            spread = f" (rounds {ratios[0]:.2f} to {ratios[-1]:.2f}x)" if len(ratios) > 1 else ""
            print(f"| {label} | {cells} | {statistics.median(ratios):.1f}x{spread} |", flush=True)
            for mode, r in zip(MODES, runs, strict=True):
                opened, ended = r.phases.get("opened", 0.0), r.phases.get("done", r.wall)
                notes.append(
                    f"{label} {'-n ' + mode if mode else 'serial'}: start-up {opened:.1f} s, "
                    f"cases {ended - opened:.1f} s, wind-down {r.wall - ended:.1f} s"
                )
    print("\n" + "\n".join(notes))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _median(runs: list[Run]) -> Run:
    """The run of median wall time (the lower middle one of an even count)."""
    return sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]


if __name__ == "__main__":
    main()
