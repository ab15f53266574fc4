"""Secrets never reach records, JUnit, summaries, journals or the terminal: tokens and SSE-C keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from conftest import gspc, records

from conformance.engine.payloads import evaluate, is_data
from conformance.redact import Redactor
from conformance.spec.loader import load_specs, spec_files

TOKEN = "planted-token-3f9a1c77e0"


def customer_keys() -> set[bytes]:
    """Every SSE-C key the bundled specs use."""
    found: set[bytes] = set()
    for spec in load_specs(spec_files()):
        for case in spec.cases:
            for step in case.steps:
                for args in step.values():
                    if isinstance(args, dict):
                        value = args.get("server_side_encryption_customer_key")
                        if is_data(value):
                            found.add(evaluate(value))
    return found


def forms(secret: bytes) -> list[str]:
    return [base64.b64encode(secret).decode(), secret.hex(), repr(secret)[2:-1]]


def test_planted_secrets_appear_nowhere(tmp_path: Path) -> None:
    keys = customer_keys()
    assert keys, "the SSE spec should use customer keys"
    done = gspc("run", "--driver", "engine_drivers:LeakyErrors", "--out", "out", cwd=tmp_path,
                env={**os.environ, "GSPC_TEST_TOKEN": TOKEN})  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    leaky = [r for r in records(tmp_path / "out") if any(TOKEN in str(s.get("error")) or "***" in str(s.get("error"))
                                                       for s in r["steps"])]  # fmt: skip
    assert leaky, "the leaky driver's messages should have reached the records (masked)"
    needles = [TOKEN] + [form for key in keys for form in forms(key)]
    texts = {path: path.read_text(encoding="utf-8", errors="replace") for path in (tmp_path / "out").rglob("*")
             if path.is_file()}  # fmt: skip
    texts[Path("stdout")] = done.stdout + done.stderr
    for path, text in texts.items():
        for needle in needles:
            assert needle not in text, f"{needle[:6]}... found in {path}"


def test_secret_pairs_are_masked_in_traces(tmp_path: Path) -> None:
    done = gspc("run", "--driver", "memory", "--spec", "sse", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    shown = [s["args"]["server_side_encryption_customer_key"] for r in records(tmp_path / "out") for s in r["steps"]
             if "server_side_encryption_customer_key" in s.get("args", {})]  # fmt: skip
    assert shown and set(shown) == {"***"}


def test_redactor_scrubs_every_form() -> None:
    redactor = Redactor({"MY_API_TOKEN": "env-secret-value-42", "HOME": "/root"})
    key = b"\x01" * 32
    redactor.add(key)
    text = f"a env-secret-value-42 b {base64.b64encode(key).decode()} c {key.hex()} /root"
    assert redactor.scrub(text) == "a *** b *** c *** /root"
    assert redactor.pairs({"server_side_encryption_customer_key": b"k" * 32, "size": 3}) == {
        "server_side_encryption_customer_key": "***",
        "size": 3,
    }
