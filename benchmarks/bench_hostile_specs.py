"""Load and lint hostile spec files up to 50 MB, each in a fresh process: time, peak memory, the one line refused.

Usage: python benchmarks/bench_hostile_specs.py [--mb 50]
Each file must be refused (or loaded) within 2 s and 300 MB of peak RSS; the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from conformance.spec.limits import SpecLimits
from conformance.spec.loader import spec_files

BUDGET_S, BUDGET_MB = 2.0, 300

CHILD = """
import json, resource, sys, time
from pathlib import Path
from conformance.spec.loader import SpecError, load_specs
from conformance.waivers import load_waivers
path, kind = Path(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
try:
    load_specs([path]) if kind == "spec" else load_waivers(path)
    lines = ["loaded"]
except SpecError as exc:
    lines = exc.problems
seconds = time.perf_counter() - start
try:  # VmHWM is this process's own peak; ru_maxrss would carry the parent's over fork and exec
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1])
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "lines": lines, "peak_mb": peak_kb / 1024}))
"""

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def _good() -> str:
    return (spec_files()[0]).read_text(encoding="utf-8")


def _repeat(unit: bytes, size: int, head: bytes = b"") -> bytes:
    return head + unit * ((size - len(head)) // len(unit))


def _at_value_cap(head: bytes, case: bytes) -> bytes:
    """Copies of the bundled cases with fresh ids, as many as fit under the value cap: the costliest accepted file."""
    events = yaml.parse(case.decode(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    per_copy = sum(isinstance(e, yaml.ScalarEvent | yaml.CollectionStartEvent) for e in events)
    copies = (SpecLimits().max_nodes - 2_000) // per_copy
    return head + b"".join(case.replace(b"  - id: ", b"  - id: c%d-" % n) for n in range(copies))


def _lint_heavy() -> bytes:
    """One case whose 9,000 param values land in 2,500 distinct paths and payload sizes."""
    good = _good()
    head = good[: good.index("cases:")]
    clause = good[good.index("  - id: ", good.index("clauses:")) + 8 :].split("\n", 1)[0]
    values = ", ".join(str(n) for n in range(1, 9001))
    steps = "".join(
        f'      - write: {{path: "d{i}/{{n}}", data: {{random: "{{n}}", seed: {i}}}}}\n' for i in range(2500)
    )
    case = f"  - id: heavy\n    clause: {clause}\n    title: Heavy.\n    params:\n      n: [{values}]\n    steps:\n"
    return (head + "cases:\n" + case + steps).encode()


def hostile(size: int) -> dict[str, Callable[[], tuple[str, bytes]]]:
    """Name -> (kind, bytes) of each hostile file, built lazily so only one is in memory at a time."""
    good = _good().encode()
    head = good[: good.index(b"cases:")] + b"cases:\n"
    case = good[good.index(b"cases:") + 7 :]
    junk = random.Random(0)
    return {
        "alias bomb (1 KB)": lambda: ("spec", BOMB.encode()),
        "alias bomb, waivers": lambda: ("waivers", BOMB.encode()),
        "deep nesting [[[...": lambda: ("spec", _repeat(b"[", size)),
        "deep nesting a: {a: ...": lambda: ("spec", _repeat(b"{a: ", size, b"x: ")),
        "flat junk (random bytes)": lambda: ("spec", junk.randbytes(size)),
        "flat junk (one printable value)": lambda: ("spec", _repeat(b"lorem ipsum ", size, b"id: ")),
        "flat list [1,1,1,...]": lambda: ("spec", _repeat(b"1,", size, b"id: [")),
        "duplicate keys": lambda: ("spec", _repeat(b"a: 1\n", size)),
        "valid but huge (cases repeated)": lambda: ("spec", _repeat(case, size, head)),
        "valid at the value cap (accepted)": lambda: ("spec", _at_value_cap(head, case)),
        "lint heavy: 9,000 params x 2,500 steps": lambda: ("spec", _lint_heavy()),
        "valid but huge waivers": lambda: (
            "waivers",
            _repeat(b"  - {case: one, reason: r, link: l}\n", size, b"target: memory\nwaivers:\n"),
        ),
        "non-UTF-8 at the end": lambda: ("spec", _repeat(b"# comment\n", size - 1) + b"\xff"),
        "larger than the cap (+1 byte)": lambda: ("spec", b" " * (50 * 1024**2 + 1)),
    }


def measure(path: Path, kind: str) -> dict:
    """Run the loader on one file in a fresh process and return its figures."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), kind], capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or "Traceback" in done.stderr:
        return {"seconds": float("nan"), "peak_mb": float("nan"), "lines": [done.stderr.strip()[-300:]]}
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=50, help="size of the large hostile files")
    size = int(parser.parse_args().mb * 1000**2)
    failed = False
    print(f"{'file':40} {'size':>9} {'time':>7} {'peak RSS':>9}  first line")
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "baseline.yaml"
        empty.write_text(_good(), encoding="utf-8")
        baseline = measure(empty, "spec")
        print(
            f"{'(a bundled spec, for scale)':40} {empty.stat().st_size:>9} {baseline['seconds']:>6.2f}s "
            f"{baseline['peak_mb']:>7.0f}MB  {baseline['lines'][0]}"
        )
        for name, build in hostile(size).items():
            kind, data = build()
            path = Path(tmp) / "hostile.yaml"
            path.write_bytes(data)
            del data
            got = measure(path, kind)
            line = got["lines"][0].replace(str(path), "F")
            ok = got["seconds"] <= BUDGET_S and got["peak_mb"] <= BUDGET_MB and len(got["lines"]) <= 21
            failed |= not ok
            print(
                f"{name:40} {path.stat().st_size:>9} {got['seconds']:>6.2f}s {got['peak_mb']:>7.0f}MB  "
                f"{line[:90]}{'' if ok else '  OVER BUDGET'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
