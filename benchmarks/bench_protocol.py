"""The memory suite in-process against memory drivers over the driver protocol, in Python, Go and Node.js.

Run: python benchmarks/bench_protocol.py [--repeat 3]
Prints two Markdown tables: the suite through ``gspc run``, every target once per round for
--repeat rounds (wall and pytest session of the best round, the worst session, the ratio of the
best sessions to in-process and its range over the rounds), and the cost of one call over the
protocol (a stat, and a 5 MiB + 1 write and read back). Python runs twice: with binary frames, and
with base64 payloads (``serve(frames=False)``, as a driver written before frames). Go is built
once into a temporary folder; a missing go or node is skipped. The load average is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = b"x" * (5 * 1024 * 1024 + 1)
BASE64 = "import sys; from conformance.adapters.memory import MemoryDriver as D; from conformance.protocol import serve; sys.exit(serve(D, frames=False))"  # noqa: E501


def commands(work: Path) -> dict[str, str]:
    """The protocol drivers that can run here, by label, as exec commands."""
    found = {
        "Python (serve)": f"{sys.executable} -m conformance.protocol conformance.adapters.memory:MemoryDriver",
        "Python (serve, base64)": f"{sys.executable} -c '{BASE64}'",
    }
    if shutil.which("go"):
        binary = work / "gspc-go-memory"
        env = {**os.environ, "GOCACHE": str(work / "go-cache"), "GOPATH": str(work / "go-path"), "GOPROXY": "off"}
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=ROOT / "examples" / "go", env=env, check=True)
        found["Go"] = str(binary)
    if shutil.which("node"):
        found["Node.js"] = f"{shutil.which('node')} {ROOT / 'examples' / 'js' / 'driver.js'}"
    return found


def suite(target: str, work: Path) -> tuple[float, float, int]:
    """Wall and session seconds of `gspc run` on every bundled spec, and the driver calls it made."""
    out = work / "out"
    command = [sys.executable, "-m", "conformance", "run", "--target", target, "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{target}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    session = float(re.search(r" in ([\d.]+)s", done.stdout)[1])
    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    calls = sum(1 for line in lines for step in json.loads(line)["steps"] if "op" in step)
    return wall, session, calls


def per_call(command: str, repeat: int) -> tuple[float, list[float]]:
    """Microseconds of one stat, and seconds of each 5 MiB + 1 write and read back, over the protocol."""
    from conformance.protocol import exec_driver

    driver = exec_driver(command)()
    try:
        driver.write("small", b"x")
        start = time.perf_counter()
        for _ in range(2000):
            driver.stat("small")
        stat = (time.perf_counter() - start) / 2000 * 1e6
        rounds = []
        for _ in range(repeat):
            start = time.perf_counter()
            driver.write("big", PAYLOAD)
            driver.read("big")
            rounds.append(time.perf_counter() - start)
        return stat, rounds
    finally:
        driver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        drivers = commands(work)
        targets = {"in-process": "memory"} | {label: f"exec:{cmd}" for label, cmd in drivers.items()}
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
        print("| memory driver | wall | session (worst) | session / in-process (per round) | driver calls |")
        print("|---|---|---|---|---|")
        runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label in targets}
        for _ in range(args.repeat):  # round by round: a change in the machine's load hits every target alike
            for label, target in targets.items():
                runs[label].append(suite(target, work))
        base = [run[1] for run in runs["in-process"]]
        for label, found in runs.items():
            wall, session, calls = min(found, key=lambda run: run[1])
            ratios = sorted(run[1] / alone for run, alone in zip(found, base, strict=True))
            spread = f"{session / min(base):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}x)"
            print(f"| {label} | {wall:.2f} s | {session:.2f} s ({max(r[1] for r in found):.2f}) | {spread} | {calls} |")
        print()
        print("| over the protocol | one stat | 5 MiB + 1 write and read back (best, worst) |")
        print("|---|---|---|")
        for label, command in drivers.items():
            stat, big = per_call(command, args.repeat)
            print(f"| {label} | {stat:.0f} µs | {min(big) * 1000:.0f} ms ({max(big) * 1000:.0f}) |")
        print(f"\nload average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
