"""junit.xml from the records, so it covers every case of a run (also those its processes never finished)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from conformance.records import failed_clauses

#: How each outcome shows in JUnit: a pass, a failure, an error, or skipped (with the reason).
JUNIT = {
    "passed": None,
    "observed": None,
    "failed": "failure",
    "unexpectedly-passed": "failure",
    "error": "error",
    "waived": "skipped",
    "not-applicable": "skipped",
    "not-run": "skipped",
}
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
PROPERTIES = ("spec_id", "clause", "rule", "level", "target", "outcome")


def write_junit(path: Path, records: list[dict[str, Any]]) -> None:
    """One testcase per record, carrying spec, clause, rule, level, target and outcome as properties."""
    kinds = Counter(JUNIT.get(r["outcome"], "error") for r in records)
    suite = ET.Element(
        "testsuite",
        name="gsp-conformance",
        tests=str(len(records)),
        failures=str(kinds["failure"]),
        errors=str(kinds["error"]),
        skipped=str(kinds["skipped"]),
        time=f"{sum(r.get('duration') or 0 for r in records):.3f}",
    )
    for record in records:
        spec, _, name = record["nodeid"].partition("::")
        case = ET.SubElement(suite, "testcase", classname=spec, name=name, time=f"{record.get('duration') or 0:.3f}")
        props = ET.SubElement(case, "properties")
        for key in PROPERTIES:
            ET.SubElement(props, "property", name="spec" if key == "spec_id" else key, value=str(record[key]))
        kind = JUNIT.get(record["outcome"], "error")
        if kind is not None:
            ET.SubElement(case, kind, message=_xml_safe(record.get("reason") or record["outcome"])).text = _xml_safe(
                explain(record)
            )
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(suite)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def explain(record: dict[str, Any]) -> str:
    """What a case checked and how it went wrong, in a few lines."""
    lines = [f"{record['spec_id']} {record['clause']} ({record['level']}, {record['rule']}) on {record['target']}: "
             f"{record['clause_text']}"]  # fmt: skip
    if failure := record.get("failure"):
        lines.append(f"  step {failure['step']} {failure['op']}: expected {failure['expected']}")
        lines.append(f"  {' ' * len(str(failure['step']))}      got {failure['actual']}")
    for other in failed_clauses(record):  # invariants and IMPL fallbacks fail clauses beside the case's own
        if other["clause"] != record["clause"]:
            where = f"{other['clause']} ({other.get('level')}, {other.get('rule')}) at step {other.get('step')}"
            lines.append(f"  also failed {where} {other.get('op')}: expected {other.get('expected')}")
            lines.append(f"      got {other.get('actual')}")
    if record.get("reason"):
        lines.append(f"  {record['outcome']}: {record['reason']}")
    return "\n".join(lines)


def _xml_safe(text: str) -> str:
    """XML 1.0 cannot carry most control characters, lone surrogates or U+FFFE/U+FFFF: show them escaped."""
    return NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))
