"""HTML report cost at scale: generation time, file size and first view in headless Chromium.

Run: python benchmarks/bench_html.py [--records 100000] [--repeat 3]
     python benchmarks/bench_html.py --screenshot reports/index.html --png report.png
Prints a Markdown table. The records are synthetic but shaped like real ones: every case of the
bundled specs, expanded over extra variants, on eight targets with their own failing clauses,
not-applicable cases, waivers, harness errors and implementation-defined observations, each
with a step trace built from the case's steps. Browser figures come from the page's own clock
(performance.now from navigation start); each is the median of --repeat fresh browsers.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from conformance.report.html import write_html
from conformance.report.summary import build
from conformance.spec.loader import load_specs, spec_files
from conformance.verdict import compute

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
RUN_ID = "20261126T120000-bench0"
# target -> (clauses it fails, operations it lacks): each target has its own honest profile.
TARGETS = {
    "memory": (set(), set()),
    "fs": ({"append.replace-timing"}, set()),
    "s3@moto": ({"sse.sse-c-enforced", "sse.sse-c-key-required"}, {"create_append", "write_append", "commit_append"}),
    "s3@ministack": ({"errors.taxonomy"}, {"create_append", "write_append", "commit_append"}),
    "dropbox@emulator": ({"delete.one-object"}, set()),
    "vendor.blob:BlobDriver": ({"append.content-order", "errors.not-exist"}, set()),
    "vendor.kv:KvDriver": ({"delete.missing-ok", "delete.repeatable"}, {"list"}),
    "fs@/srv/share": (set(), set()),
}
ERRORS = ("ObjectNotExist", "PairUnsupported", "ObjectModeInvalid", "RestrictionDissatisfied")


def synthetic(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` records sorted like a merged run (by target, node id)."""
    rng = random.Random(seed)
    specs = load_specs(spec_files())
    items = [(s, c, s.clauses[c.clause], e) for s in specs for c in s.cases for e in c.expansions()]
    per_target = -(-count // len(TARGETS))
    records = []
    for target, (fails, lacks) in TARGETS.items():
        made = []
        for n in range(per_target):
            spec, case, clause, expansion = items[n % len(items)]
            variant = n // len(items)
            made.append(_record(rng, target, fails, lacks, spec, case, clause, expansion, variant))
        records += sorted(made, key=lambda r: r["nodeid"])
    return records[:count]


def _record(rng, target, fails, lacks, spec, case, clause, expansion, variant) -> dict[str, Any]:  # noqa: PLR0913
    labels = {name: label for name, (label, _) in expansion.items()}
    if variant:
        labels["variant"] = str(variant)
    suffix = "".join(f"-{k}={v}" for k, v in labels.items())
    outcome, reason, failure, behaviour, waiver = "passed", None, None, None, None
    steps = _steps(rng, target, spec, case, variant)
    if set(case.requires) & lacks:
        outcome, reason, steps = "not-applicable", f"{target} does not declare {', '.join(sorted(case.requires))}", []
    elif clause.level == "IMPL":
        seen = ["as listed", "emptied at create_append", "old content until commit"]
        outcome, behaviour = "observed", rng.choice(seen)
    elif clause.id in fails or rng.random() < 0.004:
        outcome, failure = "failed", _failure(rng, steps, target)
        if target == "s3@moto" and clause.id.startswith("sse."):
            outcome = "waived"
            waiver = {"reason": "moto ignores SSE-C headers", "link": "https://example.invalid/moto-sse-c",
                      "file": "known-issues/s3.yaml", "expires": None}  # fmt: skip
            reason = f"known issue: {waiver['reason']} ({waiver['link']})"
    elif rng.random() < 0.0005:
        outcome, reason = "error", "harness error: OSError: [Errno 28] No space left on device"
    return {
        "run_id": RUN_ID, "target": target, "driver": target.split("@")[0], "spec": spec.name, "spec_id": spec.id,
        "spec_version": spec.version, "spec_sha256": spec.sha256, "spec_title": spec.title, "clause": clause.id,
        "rule": clause.rule, "level": clause.level, "status": clause.status, "case": case.id, "title": case.title,
        "nodeid": f"{spec.name}::{case.id}[{target}{suffix}]", "params": labels, "outcome": outcome, "reason": reason,
        "duration": round(rng.uniform(0.0002, 0.05), 6), "steps": steps, "failure": failure, "behaviour": behaviour,
        "waiver": waiver, "leftovers": [], "worker": f"gw{rng.randrange(4)}",
    }  # fmt: skip


def _steps(rng, target, spec, case, variant) -> list[dict[str, Any]]:
    steps = []
    for i, step in enumerate(case.steps, 1):
        op = step.op
        args = {k: _arg(v, variant) for k, v in step.args.items()}
        entry: dict[str, Any] = {"args": args, "duration": round(rng.uniform(1e-6, 0.01), 6), "op": op}
        error = step.expect.get("error")
        path = args.get("path", "object")
        if error:
            where = f"gspc-{RUN_ID}/{spec.name}/{case.id}/{variant}/{path}"
            entry["error"] = {"message": f"{op}: {target}, {where}: {error}", "retryable": False, "type": str(error)}
        elif op == "read":
            entry["result"] = {"bytes": 4096 + variant, "crc32": f"{zlib.crc32(str(i + variant).encode()):08x}"}
        elif op == "delete" or op == "commit_append":
            entry["result"] = None
        else:
            entry["result"] = {"append_offset": 0, "mode": "read", "path": path, "size": 4096 + variant}
        steps.append(entry)
    return steps


def _arg(value: Any, variant: int) -> Any:
    if isinstance(value, dict) and "random" in value:
        return {"bytes": 4096 + variant, "crc32": f"{zlib.crc32(repr(value).encode()):08x}"}
    if isinstance(value, str) and value.startswith("$"):
        return {"append_offset": variant, "mode": "read|append", "path": f"obj-{variant}", "size": variant}
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _failure(rng, steps, target) -> dict[str, Any]:
    step = rng.randrange(len(steps)) + 1 if steps else 1
    op = steps[step - 1]["op"] if steps else "case"
    size = rng.randrange(1, 9000)
    return {"step": step, "op": op, "expected": f"size {size}", "actual": f"size {size - 1} ({target} drops a byte)"}


def generate(records: list[dict[str, Any]], out: Path) -> tuple[float, float, Path]:
    """(seconds for the summary, seconds for write_html, the page)."""
    start = time.perf_counter()
    summary = build(RUN_ID, compute(records), records)
    middle = time.perf_counter()
    page = write_html(out, records, summary)
    return middle - start, time.perf_counter() - middle, page


def browser(playwright, user_data: str):
    """Debian's Chromium, headless, in a fresh profile (never a downloaded browser)."""
    return playwright.chromium.launch_persistent_context(
        user_data, executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1400, "height": 900}
    )


def first_view(page_path: Path) -> dict[str, float]:
    """Milliseconds from navigation start to each stage of the page, in one fresh browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as user_data:
        context = browser(p, user_data)
        page = context.pages[0] if context.pages else context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.resolve().as_uri(), wait_until="commit")
        page.wait_for_selector("#matrix table", state="visible")
        page.wait_for_selector("body[data-ready]", state="attached", timeout=60_000)
        until(page, "performance.getEntriesByName('first-contentful-paint').length && window.__gspcTiming.matrixFrame")
        figures = page.evaluate(
            """() => {
              const t = window.__gspcTiming, nav = performance.getEntriesByType('navigation')[0];
              const fcp = performance.getEntriesByName('first-contentful-paint')[0];
              return {matrix: t.matrix, frame: t.matrixFrame, fcp: fcp ? fcp.startTime : NaN, cases: t.cases,
                      traces: t.traces, dom: nav.domContentLoadedEventEnd, load: nav.loadEventEnd};
            }"""
        )
        figures.update(_interactions(page))
        context.close()
    if errors:
        raise SystemExit(f"console errors: {errors}")
    return figures


def until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll an expression with evaluate: the page's CSP forbids the eval behind wait_for_function."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.005)


def _interactions(page) -> dict[str, float]:
    """Milliseconds the page spends on a filter, a search and opening a case (its own clock)."""
    out = {}
    for name, action in (
        ("filter", lambda: page.select_option("[data-filter=outcome]", "failed")),
        ("search", lambda: page.fill("input[type=search]", "drops a byte")),
        ("open", lambda: page.click("tr.row >> nth=0")),
    ):
        before = page.evaluate("window.__gspcTiming.updates")
        action()
        until(page, f"window.__gspcTiming.updates > {before}")
        out[name] = page.evaluate("window.__gspcTiming.last")
    return out


def screenshot(report: Path, png: Path, open_first_failure: bool = True) -> None:
    """A PNG of a report's first screen; with a failure, after clicking the first one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as user_data:
        context = browser(p, user_data)
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(report.resolve().as_uri())
        page.wait_for_selector("body[data-ready]", state="attached")
        if open_first_failure and page.locator("#failures li").count():
            page.click("#failures li >> nth=0")
            page.wait_for_selector(".detail")
        page.screenshot(path=str(png))
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the report into this folder and keep it")
    parser.add_argument("--screenshot", type=Path, default=None, metavar="INDEX_HTML", help="only take a screenshot")
    parser.add_argument("--png", type=Path, default=Path("report.png"))
    parser.add_argument("--first-screen", action="store_true", help="with --screenshot: do not open the first failure")
    args = parser.parse_args()
    if args.screenshot:
        screenshot(args.screenshot, args.png, not args.first_screen)
        print(f"wrote {args.png}")
        return 0
    start = time.perf_counter()
    records = synthetic(args.records)
    made = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        gens = [generate(records, out) for _ in range(args.repeat)]
        page = gens[-1][2]
        size = page.stat().st_size
        views = [first_view(page) for _ in range(args.repeat)]
    failed = sum(r["outcome"] == "failed" for r in records)
    med = lambda key: statistics.median(v[key] for v in views)  # noqa: E731
    rows = [
        ("records (targets, failed)", f"{len(records):,} ({len(TARGETS)}, {failed:,})"),
        ("synthesising the records", f"{made:.2f} s"),
        ("summary (verdicts)", f"{statistics.median(g[0] for g in gens):.2f} s"),
        ("**generation: write_html**", f"**{statistics.median(g[1] for g in gens):.2f} s** (budget 5 s)"),
        ("index.html size", f"{size / 2**20:.1f} MiB"),
        ("matrix in the DOM", f"{med('matrix'):.0f} ms"),
        ("**first view: first paint (matrix drawn)**", f"**{med('fcp'):.0f} ms** (budget 2,000 ms)"),
        ("case list ready (index parsed, page 1 drawn)", f"{med('cases'):.0f} ms"),
        ("traces ready (whole page parsed)", f"{med('traces'):.0f} ms"),
        ("DOMContentLoaded / load", f"{med('dom'):.0f} / {med('load'):.0f} ms"),
        ("filter outcome=failed", f"{med('filter'):.0f} ms"),
        ("search a failure message (incl. traces)", f"{med('search'):.0f} ms"),
        ("open a case with its trace", f"{med('open'):.0f} ms"),
    ]
    print(f"HTML report, {args.repeat} runs, medians; Chromium at {CHROMIUM}\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
