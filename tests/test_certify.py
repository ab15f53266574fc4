"""``gspc certify`` and ``gspc verify``: certificate, badges, HTML report, and tamper detection."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from conftest import gspc, records
from test_run import readme_driver

from conformance.spec.loader import bundled_specs_dir, schema, spec_files


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A certification of the memory driver, shared read-only; tests that edit files copy it."""
    work = tmp_path_factory.mktemp("certify")
    done = gspc("certify", "memory", "--out", "cert", cwd=work)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    return work / "cert"


def _copy(certified: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(certified, tmp_path / "cert"))


def _certificate(folder: Path) -> dict:
    return json.loads((folder / "certificate.json").read_text(encoding="utf-8"))


def test_certificate_names_target_specs_verdicts_and_digests(certified: Path) -> None:
    cert = _certificate(certified)
    jsonschema.validate(cert, schema("certificate"))
    assert cert["target"] == "memory" and cert["verdict"] == "conformant" and cert["exit_code"] == 0
    assert cert["driver"]["reference"] == "conformance.adapters.memory:MemoryDriver"
    assert cert["driver"]["distribution"] == "gsp-conformance" and cert["harness"]["version"]
    assert {s["name"] for s in cert["specs"]} == {p.stem for p in spec_files()}
    delete = next(v for v in cert["verdicts"] if v["spec"] == "delete")
    assert delete["levels"]["MUST"]["verdict"] == "conformant" and delete["levels"]["MUST"]["counts"]["passed"]
    assert cert["records"]["count"] == len(records(certified)) == sum(cert["counts"].values())
    assert cert["waivers"] == [] and cert["run_id"] == records(certified)[0]["run_id"]


def test_badges_say_conformant_in_green(certified: Path) -> None:
    endpoint = json.loads((certified / "badge.json").read_text(encoding="utf-8"))
    assert endpoint == {"schemaVersion": 1, "label": "GSP conformance", "message": "conformant", "color": "brightgreen"}
    svg = ET.parse(certified / "badge.svg").getroot()
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "GSP conformance" in texts and "conformant" in texts
    assert any(r.get("fill") == "#4c1" for r in svg.iter("{http://www.w3.org/2000/svg}rect"))


def test_certification_writes_the_html_report(certified: Path) -> None:
    cert = _certificate(certified)
    if cert["reports"]["html"] is None:
        pytest.skip("no HTML renderer in this tree yet")
    assert (certified / cert["reports"]["html"]).is_file()


def test_verify_accepts_the_untouched_certificate(certified: Path) -> None:
    done = gspc("verify", str(certified / "certificate.json"), cwd=certified)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified" in done.stdout


def test_verify_detects_a_tampered_record(certified: Path, tmp_path: Path) -> None:
    folder = _copy(certified, tmp_path)
    lines = (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if '"outcome": "failed"' in line or '"outcome": "passed"' in line)
    lines[index] = lines[index].replace('"outcome": "passed"', '"outcome": "failed"')
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = gspc("verify", str(folder / "certificate.json"), cwd=tmp_path)
    assert done.returncode == 1
    assert "the records were changed" in done.stdout
    assert "verdicts:" in done.stdout  # a failed case changes the derived verdict as well


def test_verify_detects_an_edited_spec(certified: Path, tmp_path: Path) -> None:
    specs = Path(shutil.copytree(bundled_specs_dir(), tmp_path / "specs", ignore=shutil.ignore_patterns("*.py")))
    with (specs / "delete.yaml").open("a", encoding="utf-8") as handle:
        handle.write("# an innocent-looking edit\n")
    done = gspc("verify", str(certified / "certificate.json"), "--specs-dir", str(specs), cwd=tmp_path)
    assert done.returncode == 1
    (line,) = done.stdout.splitlines()
    assert "spec GSP-46 (delete)" in line and "the spec was changed" in line


def test_verify_detects_an_edited_verdict(certified: Path, tmp_path: Path) -> None:
    folder = _copy(certified, tmp_path)
    cert = _certificate(folder)
    cert["verdicts"][0]["levels"]["MUST"]["verdict"] = "non-conformant"
    cert["counts"]["passed"] += 1
    (folder / "certificate.json").write_text(json.dumps(cert), encoding="utf-8")
    done = gspc("verify", str(folder / "certificate.json"), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert any(f"verdicts: {cert['verdicts'][0]['spec']}: the certificate says" in line for line in lines)
    assert any("counts:" in line for line in lines)


def test_verify_refuses_another_certificate_version_in_one_line(certified: Path, tmp_path: Path) -> None:
    folder = _copy(certified, tmp_path)
    cert = _certificate(folder)
    cert["certificate_version"] = 1
    (folder / "certificate.json").write_text(json.dumps(cert), encoding="utf-8")
    done = gspc("verify", str(folder / "certificate.json"), cwd=tmp_path)
    assert done.returncode == 1
    line = f"{folder / 'certificate.json'}: certificate: version 1; this harness writes and verifies version 2"
    assert done.stdout.splitlines() == [f"{line} (certify again)"], done.stdout


def test_verify_reads_records_given_elsewhere(certified: Path, tmp_path: Path) -> None:
    shutil.copy(certified / "certificate.json", tmp_path / "certificate.json")
    missing = gspc("verify", "certificate.json", cwd=tmp_path)
    assert missing.returncode == 1 and "not found" in missing.stdout
    given = gspc("verify", "certificate.json", "--records", str(certified / "records.jsonl"), cwd=tmp_path)
    assert given.returncode == 0, given.stdout


def test_non_conformant_driver_with_waivers_gets_a_red_badge_and_a_verifiable_certificate(tmp_path: Path) -> None:
    (tmp_path / "known.yaml").write_text(
        "target: engine_drivers:DeleteMissingFails\nwaivers:\n"
        "  - case: delete-missing-parent\n    reason: parents are looked up first\n    link: https://example.test/9\n",
        encoding="utf-8",
    )
    done = gspc("certify", "engine_drivers:DeleteMissingFails", "--known-issues", "known.yaml", "--out", "cert",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    cert = _certificate(tmp_path / "cert")
    assert cert["verdict"] == "non-conformant"
    delete = next(v for v in cert["verdicts"] if v["spec"] == "delete")
    assert delete["levels"]["MUST"]["verdict"] == "non-conformant"
    assert delete["levels"]["SHOULD"]["verdict"] == "conformant-with-warnings"  # the waived SHOULD case
    (waiver,) = cert["waivers"]
    assert waiver["case"] == "delete-missing-parent" and waiver["link"] == "https://example.test/9"
    assert waiver["outcomes"] == {"waived": 1}
    # a case waiver covers every clause its case failed: the invariant errors.envelope there too
    assert waiver["covered"] == ["delete.missing-parent-ok", "errors.envelope"]
    errors = next(v for v in cert["verdicts"] if v["spec"] == "errors")
    assert "delete-missing-parent" in errors["clauses"]["errors.envelope"]["waived"]
    assert "delete-missing" in errors["clauses"]["errors.envelope"]["failed"]
    assert json.loads((tmp_path / "cert" / "badge.json").read_text())["color"] == "red"
    assert gspc("verify", "cert/certificate.json", cwd=tmp_path).returncode == 0


def test_certify_runs_every_case(tmp_path: Path) -> None:
    done = gspc("certify", "memory", "--out", "cert", "--", "-k", "delete-missing", cwd=tmp_path)
    assert done.returncode == 2 and "every case" in done.stderr


def test_a_driver_without_append_or_sse_is_certified_as_refusing_them(tmp_path: Path) -> None:
    (tmp_path / "mystore.py").write_text(readme_driver(), encoding="utf-8")
    done = gspc("certify", "mystore:MyDriver", "--out", "cert", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    cert = _certificate(tmp_path / "cert")
    jsonschema.validate(cert, schema("certificate"))
    verdicts = {v["spec"]: v["verdict"] for v in cert["verdicts"]}
    assert verdicts["append"] == verdicts["sse"] == "refuses-correctly"
    assert verdicts["delete"] == verdicts["errors"] == "conformant"
    implemented = sorted(spec for spec, verdict in verdicts.items() if verdict == "conformant")
    assert cert["verdict"] == "conformant" and cert["exit_code"] == 0
    assert cert["profile"]["operations"] == ["delete", "list", "read", "stat", "write"]
    assert cert["profile"]["pairs"] == {"read": ["offset", "size"]}
    append = next(v for v in cert["verdicts"] if v["spec"] == "append")
    assert {lv["verdict"] for lv in append["levels"].values()} <= {"refuses-correctly", "not-applicable"}
    assert all(r["refusal"] for r in records(tmp_path / "cert") if r["spec"] == "append" and r["outcome"] == "passed")
    endpoint = json.loads((tmp_path / "cert" / "badge.json").read_text(encoding="utf-8"))
    assert endpoint["message"] == f"conformant on {', '.join(implemented)}"
    assert endpoint["message"] in (tmp_path / "cert" / "badge.svg").read_text(encoding="utf-8")
    assert "is conformant: refuses-correctly on GSP-44, GSP-38; conformant on GSP-46, GSP-47" in done.stdout
    checked = gspc("verify", "cert/certificate.json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert "refuses-correctly on GSP-44, GSP-38" in checked.stdout


def test_certify_and_verify_name_exactly_the_non_conformant_specs(tmp_path: Path) -> None:
    done = gspc("certify", "engine_drivers:DeleteMissingFails", "--out", "cert", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    cert = _certificate(tmp_path / "cert")
    named: dict[str, list[str]] = {}
    for v in cert["verdicts"]:
        named.setdefault(v["verdict"], []).append(v["spec_id"])
    assert "GSP-46" in named["non-conformant"] and "GSP-44" not in named["non-conformant"]
    said = "; ".join(f"{verdict} on {', '.join(ids)}" for verdict, ids in named.items())
    assert f"is non-conformant: {said}; certificate" in done.stdout.strip().splitlines()[-1]
    verified = gspc("verify", "cert/certificate.json", cwd=tmp_path).stdout
    assert f"is non-conformant: {said} (" in verified
