"""gspc explore: steps per second on correct targets, and the time to find and shrink each sequence bug.

Run: python benchmarks/bench_explore.py [--targets memory s3@moto] [--examples 100] [--seeds 3]
Prints two Markdown tables. Each exploration runs in this process through the library call that
`gspc explore` makes, in a fresh output folder (so no example database helps).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the sequence-bug drivers

from conformance.explore.run import explore  # noqa: E402

BROKEN = ("StaleReadCache", "ListingTombstone", "OffsetDrift", "LostCommit")


def run(target: str, examples: int, steps: int, seed: int) -> object:
    with tempfile.TemporaryDirectory() as out:
        return explore(target, out=Path(out), examples=examples, steps=steps, seed_value=seed, say=lambda _: None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", nargs="+", default=["memory", "s3@moto"])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per sequence bug (1..N)")
    args = parser.parse_args()
    print("| target | sequences | steps | seconds | steps/s | outcome |\n|---|---:|---:|---:|---:|---|")
    for target in args.targets:
        r = run(target, args.examples, args.steps, 1)
        rate = r.steps / r.seconds
        print(f"| {target} | {r.sequences} | {r.steps:,} | {r.seconds:.1f} | {rate:,.0f} | {r.outcome} |")
    print("\n| sequence bug | seed | found, shrunk in s | sequences run | steps | shrunk steps | clause |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in BROKEN:
        for seed in range(1, args.seeds + 1):
            r = run(f"sequence_drivers:{name}", 300, args.steps, seed)
            shrunk = len(r.failure.steps) if r.failure else "-"
            clause = r.failure.clause if r.failure else f"not found ({r.outcome})"
            print(f"| {name} | {seed} | {r.seconds:.1f} | {r.sequences} | {r.steps:,} | {shrunk} | {clause} |")


if __name__ == "__main__":
    main()
