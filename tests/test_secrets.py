"""Secrets never reach records, JUnit, summaries, journals, Allure, the HTML page or the terminal."""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import json
import os
import re
import zlib
from pathlib import Path
from urllib.parse import quote, quote_plus

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
                value = step.args.get("server_side_encryption_customer_key")
                if is_data(value):
                    found.add(evaluate(value))
    return found


def forms(secret: bytes) -> list[str]:
    return [base64.b64encode(secret).decode(), secret.hex(), repr(secret)[2:-1]]


#: Secrets a leaky driver reaches: two from the environment, two as driver options (odd characters on purpose).
ENV_SECRETS = {"GSPC_TEST_TOKEN": "planted-token-3f9a1c77e0", "MYSERVICE_API_KEY": "MyS3rv1ce/Key+Value=42&x<y>"}
OPTION_SECRETS = {"api_key": "opt-api-key-7Hq2Lw9Zp4", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE"}


def every_form(secret: bytes) -> dict[str, str]:
    """Each textual form of a secret an output must not contain, by name."""
    b64, url = base64.b64encode(secret).decode(), base64.urlsafe_b64encode(secret).decode()
    found = {"base64": b64.rstrip("="), "base64url": url.rstrip("="), "hex": secret.hex(), "HEX": secret.hex().upper(),
             "url": quote(secret, safe=""), "url/": quote(secret), "url+": quote_plus(secret),
             "bytes repr": repr(secret)[2:-1], "bytes repr in a repr": repr(repr(secret))[2:-2],
             "bytes repr in JSON": json.dumps(repr(secret))[3:-2]}  # fmt: skip
    try:
        text = secret.decode()
    except UnicodeDecodeError:
        return found
    return found | {"raw": text, "xml": html.escape(text, quote=False), "json": json.dumps(text)[1:-1]}


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{11,}={0,2}")


def decoded(text: str) -> list[bytes]:
    """Every run of base64 in a text decoded (either alphabet), and inflated where it is deflated data."""
    found = []
    for run in _BASE64_RUN.findall(text):
        for alphabet in (None, b"-_"):
            try:
                data = base64.b64decode(run + "=" * (-len(run) % 4), altchars=alphabet)
            except (binascii.Error, ValueError):
                continue
            found.append(data)
            with contextlib.suppress(zlib.error):
                found.append(zlib.decompress(data))
    return found


def test_planted_secrets_leak_from_no_channel(tmp_path: Path) -> None:
    """A driver that plants its secrets in messages, causes, system, results, reprs, stdout, stderr and not-run
    reasons, and echoes the SSE-C keys it is handed: no output file and no terminal line carries any form of any."""
    env = {**os.environ, **ENV_SECRETS}
    options = [arg for key, value in OPTION_SECRETS.items() for arg in ("--option", f"{key}={value}")]
    drivers = ["--driver", "leaky_drivers:Leaky", "--driver", "leaky_drivers:LeakyUnavailable"]
    # -rA and junit_logging=all: every case's captured stdout and stderr reach the terminal and junit.xml
    done = gspc("run", *drivers, *options, "--out", "out", "--allure", "allure", "--", "-rA", "-o", "junit_logging=all",
                cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode in (0, 1, 3), done.stdout[-3000:] + done.stderr[-3000:]
    written = records(tmp_path / "out")
    masked = json.dumps(written)
    for planted in ("***", "Receipt(", '"not-run"'):  # messages and system, a repr'd result, a not-run reason
        assert planted in masked, f"the leaks should reach the records (masked): no {planted}"
    results = [s["result"] for r in written for s in r["steps"] if isinstance(s.get("result"), dict)]
    assert any(result.get("system") for result in results)

    secrets = {**ENV_SECRETS, **OPTION_SECRETS}
    raw = {name: value.encode() for name, value in secrets.items()} | {f"SSE-C key {k.hex()[:8]}": k
                                                                        for k in customer_keys()}  # fmt: skip
    outputs = {str(p.relative_to(tmp_path)): p.read_text(encoding="utf-8", errors="replace")
               for p in tmp_path.rglob("*") if p.is_file()}  # fmt: skip
    outputs["terminal (stdout)"], outputs["terminal (stderr)"] = done.stdout, done.stderr
    assert any(name.startswith("allure/") for name in outputs) and "out/junit.xml" in outputs
    leaks = []
    for where, text in outputs.items():
        for name, secret in raw.items():
            leaks += [f"{where}: {name} as {form}" for form, shown in every_form(secret).items() if shown in text]
            if any(secret in data for data in decoded(text)):
                leaks.append(f"{where}: {name} inside a base64 (or deflated) value")
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(sorted(leaks))


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
