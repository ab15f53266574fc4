"""summary.json: the run, its specs, and the verdict of every target on every spec."""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from conformance import __version__
from conformance.records import INTERRUPTED, merge
from conformance.report.html import write_html
from conformance.report.junit import write_junit
from conformance.verdict import Verdict, behaviours, compute, exit_code, worst

#: Packages whose versions a summary records: the harness, its runner, and the SDKs of the bundled drivers.
PACKAGES = ("gsp-conformance", "pytest", "pytest-xdist", "pytest-timeout", "boto3", "botocore", "moto", "dropbox")


def environment() -> dict[str, Any]:
    """Where the run happened: Python, platform, and the versions of the packages that matter."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": versions}


def build(
    run_id: str, verdicts: list[Verdict], records: list[dict[str, Any]], started: dt.datetime | None = None
) -> dict[str, Any]:
    """The summary document (schema: specs/schema/summary.schema.json)."""
    specs = {
        r["spec"]: {
            "id": r["spec_id"],
            "title": r["spec_title"],
            "version": r["spec_version"],
            "sha256": r["spec_sha256"],
        }
        for r in records
    }
    now = dt.datetime.now(dt.UTC)
    return {
        "run_id": run_id,
        "harness_version": __version__,
        "created": now.isoformat(timespec="seconds"),
        "duration": round((now - started).total_seconds(), 3) if started else None,
        "environment": environment(),
        "drivers": dict(sorted({r["target"]: r["driver"] for r in records}.items())),
        "specs": dict(sorted(specs.items())),
        "targets": sorted({v.target for v in verdicts}),
        "verdicts": [v.as_dict() for v in verdicts],
        "totals": dict(Counter(r["outcome"] for r in records)),
        "behaviours": behaviours(records),
        "verdict": worst(verdicts),
        "exit_code": exit_code(verdicts),
    }


def write(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def finalize(out: Path, run_id: str, started: dt.datetime | None = None, interrupted: bool = False) -> dict[str, Any]:
    """Merge a run's records (every collected case gets one), judge them, and write records.jsonl,
    summary.json, junit.xml and index.html."""
    records = merge(out, INTERRUPTED, INTERRUPTED) if interrupted else merge(out)
    summary = build(run_id, compute(records), records, started)
    write(out / "summary.json", summary)
    write_junit(out / "junit.xml", records)
    write_html(out, records, summary)
    return summary
