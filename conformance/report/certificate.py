"""certificate.json: what a certification run proved, with digests that ``gspc verify`` re-checks.

Everything under ``derived`` keys is recomputed from the records alone by :func:`derive`, so a
verifier needs only the records file, the spec files and this module: never a second run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from conformance.records import failed_clauses, read_records
from conformance.spec.loader import schema
from conformance.spec.model import LEVELS
from conformance.targets import driver_names
from conformance.verdict import REFUSES, compute, judge, worst

if TYPE_CHECKING:
    from conformance.driver import Capabilities

VERSION = 2  # 2: per-clause results in each spec verdict, and the clauses each waiver covered
#: Keys of a certificate recomputed from the records; any difference is a mismatch.
DERIVED = ("target", "run_id", "specs", "verdict", "verdicts", "counts", "waivers")


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def derive(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The part of a certificate that follows from the records: target, specs, verdicts, counts, waivers."""
    targets = sorted({str(r["target"]) for r in records})
    run_ids = sorted({str(r["run_id"]) for r in records})
    specs = {
        r["spec"]: {"name": r["spec"], "id": r["spec_id"], "title": r["spec_title"], "version": r["spec_version"],
                    "sha256": r["spec_sha256"]}
        for r in records
    }  # fmt: skip
    verdicts = compute(records)
    return {
        "target": ", ".join(targets),
        "run_id": ", ".join(run_ids),
        "specs": [specs[name] for name in sorted(specs)],
        "verdict": worst(verdicts),
        # a spec of which no case ran has a verdict where an invariant failed one of its clauses in another's case
        "verdicts": [_spec_verdict(v, specs[v.spec]["id"] if v.spec in specs else v.spec) for v in verdicts],
        "counts": dict(sorted(Counter(r["outcome"] for r in records).items())),
        "waivers": _waivers(records),
    }


def _spec_verdict(verdict: Any, spec_id: str) -> dict[str, Any]:
    """A spec's verdict, and a verdict per level judged by the same rule on that level's outcomes alone."""
    levels = {
        level: {"verdict": _level_verdict(verdict, level), "counts": dict(sorted(verdict.counts[level].items()))}
        for level in LEVELS
        if level in verdict.counts
    }
    found = {"spec": verdict.spec, "spec_id": spec_id, "verdict": verdict.verdict, "levels": levels}
    failed, waived = verdict.failed, verdict.waived
    if failed or waived:  # every clause of the spec that failed or was waived, wherever it failed (invariants too)
        found["clauses"] = {
            c: {"failed": sorted(failed.get(c, ())), "waived": sorted(waived.get(c, ()))}
            for c in sorted(failed.keys() | waived.keys())
        }
    return found


def _level_verdict(verdict: Any, level: str) -> str:
    """A level judged alone; where the spec ran only refusals, a conformant level is a refusal too."""
    found = judge(verdict.counts[level], {level: verdict.counts[level]})
    return REFUSES if verdict.verdict == REFUSES and found == "conformant" else found


def _waivers(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The waivers the run applied, once each, with the outcomes of the cases they covered and every failed
    clause they covered there (an invariant's too); a clause waiver is listed under its clause, a case
    waiver under its case's."""
    used: dict[tuple, Counter] = defaultdict(Counter)
    covered: dict[tuple, set[str]] = defaultdict(set)
    for r in records:
        found = {_waiver_key(r, w): set() for w in [r.get("waiver")] if isinstance(w, dict)}
        for entry in failed_clauses(r):
            if isinstance(w := entry.get("waiver"), dict):
                found.setdefault(_waiver_key(r, w), set()).add(entry["clause"])
        for key, clauses in found.items():
            used[key][r["outcome"]] += 1
            covered[key] |= clauses
    listed = []
    for key, outcomes in sorted(used.items(), key=lambda i: str(i[0])):
        spec, clause, case, reason, link, expires = key
        listed.append({"spec": spec, "clause": clause, "case": case, "reason": reason, "link": link,
                       "expires": expires, "covered": sorted(covered[key]),
                       "outcomes": dict(sorted(outcomes.items()))})  # fmt: skip
    return listed


def _waiver_key(record: dict[str, Any], waiver: dict[str, Any]) -> tuple:
    covers = waiver.get("covers")
    clause = covers if isinstance(covers, str) and covers != "all" else record["clause"]
    return record["spec"], clause, record["case"], waiver.get("reason"), waiver.get("link"), waiver.get("expires")


def build(records: list[dict[str, Any]], records_file: Path, summary: dict[str, Any],
          html: Path | None, declared: Capabilities | None = None,
          explored: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The certificate of a single-target run (schema: specs/schema/certificate.schema.json).

    ``declared`` is what the driver declared: the certified profile; ``explored``, the budget and
    result of a ``gspc explore`` run beside the specs (not part of the verdict, which the records give).
    """
    driver = records[0]["driver"] if records else ""
    cert = {
        "certificate_version": VERSION,
        "date": summary["created"],
        **derive(records),
        "driver": driver_info(driver),
        "harness": {"name": "gsp-conformance", "version": summary["harness_version"]},
        "environment": summary["environment"],
        "exit_code": summary["exit_code"],
        "records": {"file": records_file.name, "sha256": sha256(records_file), "count": len(records)},
        "reports": {"summary": "summary.json", "html": html.name if html else None},
    }
    if declared is not None:
        cert["profile"] = profile(declared)
    if explored is not None:
        cert["explore"] = explored
    return cert


def profile(caps: Capabilities) -> dict[str, Any]:
    """The capabilities a driver declared, as JSON: the profile a certificate covers."""
    return {
        "operations": sorted(caps.operations),
        "pairs": {op: sorted(names) for op, names in sorted(caps.pairs.items()) if names},
        "limits": dict(sorted(caps.limits.items())),
        "features": sorted(caps.features),
    }


def by_verdict(cert: dict[str, Any]) -> str:
    """Which specs got which verdict, e.g. ``conformant on GSP-46, GSP-47; refuses-correctly on GSP-44``."""
    groups: dict[str, list[str]] = defaultdict(list)
    for v in cert.get("verdicts") or []:
        groups[v["verdict"]].append(v["spec_id"])
    return "; ".join(f"{verdict} on {', '.join(ids)}" for verdict, ids in groups.items())


def implemented(cert: dict[str, Any]) -> list[str]:
    """The names of the specs a certificate covers for more than refusals (empty if it covers all)."""
    verdicts = cert.get("verdicts") or []
    if not any(v["verdict"] == REFUSES for v in verdicts):
        return []
    return [v["spec"] for v in verdicts if v["verdict"] not in (REFUSES, "not-applicable")]


def driver_info(driver: str) -> dict[str, Any]:
    """A driver's name, ``module:Class`` reference, and the installed distribution that provides it."""
    reference = driver_names().get(driver, driver)
    top = reference.partition(":")[0].split(".")[0]
    dists = metadata.packages_distributions().get(top, [])
    dist = dists[0] if dists else None
    return {"name": driver, "reference": reference, "distribution": dist,
            "version": metadata.version(dist) if dist else None}  # fmt: skip


def write(path: Path, certificate: dict[str, Any]) -> None:
    """Write a certificate after checking it against its schema."""
    jsonschema.validate(certificate, schema("certificate"))
    # a lone surrogate in a foreign record's text is written as its JSON escape rather than failing the write
    path.write_text(json.dumps(certificate, indent=2, ensure_ascii=False) + "\n", encoding="utf-8",
                    errors="backslashreplace")  # fmt: skip


def verify(certificate: dict[str, Any], records_file: Path, specs_dir: Path) -> list[str]:
    """Every mismatch between a certificate, its records and the spec files, one line each."""
    version = certificate.get("certificate_version") if isinstance(certificate, dict) else None
    if version != VERSION:
        return [f"certificate: version {version!r}; this harness writes and verifies version {VERSION} (certify again)"]
    problems = [
        f"certificate: {'/'.join(map(str, e.absolute_path)) or 'top level'}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema("certificate")).iter_errors(certificate)
    ]
    if problems:
        return problems
    if not records_file.is_file():
        return [f"records: {records_file} not found"]
    digest = sha256(records_file)
    if digest != certificate["records"]["sha256"]:
        problems.append(f"records: sha256 of {records_file.name} is {digest}, the certificate says "
                        f"{certificate['records']['sha256']} (the records were changed)")  # fmt: skip
    records = list(read_records(records_file))  # a line that is no longer JSON shows up in the count
    if len(records) != certificate["records"]["count"]:
        problems.append(f"records: {len(records)} records, the certificate says {certificate['records']['count']}")
    try:
        derived = derive(records)
    except (KeyError, TypeError, AttributeError) as exc:
        return [*problems, f"records: cannot be judged ({type(exc).__name__}: {exc})"]
    for key in DERIVED:
        if derived[key] != certificate[key]:
            problems += _differences(key, certificate[key], derived[key])
    for spec in certificate["specs"]:
        path = specs_dir / f"{spec['name']}.yaml"
        if not path.is_file():
            problems.append(f"spec {spec['id']} ({spec['name']}): {path} not found")
        elif (found := sha256(path)) != spec["sha256"]:
            problems.append(f"spec {spec['id']} ({spec['name']}): sha256 of {path} is {found}, the certificate "
                            f"says {spec['sha256']} (the spec was changed)")  # fmt: skip
    return problems


def _differences(key: str, claimed: Any, derived: Any) -> list[str]:
    """One line per differing entry of a derived field (per spec for verdicts), else one for the field."""
    if key == "verdicts":
        by_spec = {v["spec"]: v for v in derived}
        lines = []
        for v in claimed:
            real = by_spec.pop(v["spec"], None)
            if real is None:
                lines.append(f"verdicts: spec {v['spec']} has no records")
            elif real != v:
                lines.append(f"verdicts: {v['spec']}: the certificate says {_brief(v)}, "
                             f"the records give {_brief(real)}")  # fmt: skip
        lines += [f"verdicts: spec {name} has records but no verdict in the certificate" for name in by_spec]
        return lines
    return [f"{key}: the certificate says {_short(claimed)}, the records give {_short(derived)}"]


def _brief(verdict: dict[str, Any]) -> str:
    levels = ", ".join(f"{level} {v['verdict']} {v['counts']}" for level, v in verdict["levels"].items())
    return f"{verdict['verdict']} ({levels})"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    return text if len(text) <= 300 else text[:297] + "..."
