"""The redactor: which names are secret, every form of a secret, and clean() as the gate of every record."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from conformance.records import RecordWriter, read_records
from conformance.redact import MASK, MAX_TEXT, Redactor, scrub_tree, secret_name
from conformance.report.terminal import printable
from conformance.spec.loader import load_specs, spec_files

SECRET = "s3cr3t-Value/with+odd=chars&more"
KEY = bytes(range(200, 232))  # a 32-byte SSE-C key that is not text


def forms(raw: bytes) -> dict[str, str]:
    """Every form a secret must be scrubbed in, by name."""
    b64, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    found = {"base64": b64, "base64 unpadded": b64.rstrip("="), "base64url": url, "base64url unpadded": url.rstrip("="),
             "hex": raw.hex(), "HEX": raw.hex().upper(), "bytes repr": repr(raw)[2:-1],
             "url": quote(raw, safe=""), "url (slash kept)": quote(raw), "url plus": quote_plus(raw)}  # fmt: skip
    with contextlib.suppress(UnicodeDecodeError):
        found["raw"] = raw.decode()
    return found


@pytest.mark.parametrize("raw", [SECRET.encode(), KEY, b"exactly8"], ids=["text", "key bytes", "eight bytes"])
def test_every_form_is_scrubbed_alone_and_inside_larger_text(raw: bytes) -> None:
    redactor = Redactor({})
    redactor.add(raw)
    for name, form in forms(raw).items():
        assert redactor.scrub(form) == MASK, name
        assert redactor.scrub(f"before [{form}] after") == f"before [{MASK}] after", name


@pytest.mark.parametrize("before", range(6))
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_of_a_larger_value_loses_the_secret_at_any_offset(before: int, encode) -> None:
    redactor = Redactor({})
    redactor.add(KEY)
    blob = encode(b"h" * before + KEY + b"trailer").decode()
    scrubbed = redactor.scrub(blob)
    assert MASK in scrubbed
    # what is left decodes to at most two bytes of the key on either side of the mask
    assert len(blob) - len(scrubbed) >= len(encode(KEY)) - 8


def test_text_escapes_of_a_secret_are_scrubbed() -> None:
    redactor = Redactor({})
    redactor.add(SECRET)
    for shown in (json.dumps(SECRET), json.dumps({"m": SECRET}), "&amp;".join(SECRET.split("&")), repr(SECRET)):
        assert SECRET.split("&")[0] not in redactor.scrub(shown), shown


@pytest.mark.parametrize(
    "name",
    ["GSPC_TEST_TOKEN", "MYSERVICE_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "db_password", "MY_PASSWD",
     "AZURE_ACCOUNT_KEY", "customer_key", "APIKEY", "GOOGLE_APPLICATION_CREDENTIALS", "HTTP_AUTH", "oauth_client",
     "access_key", "secret_access_key", "api_key", "Token"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert secret_name(name)
    redactor = Redactor({name: "value-of-" + name})
    assert redactor.scrub("x value-of-" + name) == "x " + MASK
    redactor = Redactor({})
    redactor.learn_options({name: "opt-of-" + name})
    assert redactor.scrub("opt-of-" + name) == MASK
    assert redactor.pairs({name: "opt-of-" + name, "size": 3}) == {name: MASK, "size": 3}


@pytest.mark.parametrize(
    "name", ["key_prefix", "server_side_encryption_aws_kms_key_id", "GIT_AUTHOR_NAME", "HOME", "size", "keyspace"]
)
def test_names_that_are_not_secret(name: str) -> None:
    """key_prefix and kms_key_id must stay readable: cleanup reopens a target with them."""
    assert not secret_name(name)
    assert Redactor({name: "ordinary-value"}).scrub("ordinary-value") == "ordinary-value"


def test_short_values_are_not_learned_but_still_masked_as_pairs() -> None:
    redactor = Redactor({"X_TOKEN": "short", "Y_TOKEN": "1234567"})
    redactor.learn_options({"api_key": "abc"})
    redactor.add(b"\x00" * 7)
    assert redactor.scrub("short 1234567 abc") == "short 1234567 abc"
    assert redactor.pairs({"api_key": "abc"}) == {"api_key": MASK}
    assert redactor.clean({"password": 1}) == {"password": MASK}


def test_learn_specs_knows_every_customer_key_before_any_driver() -> None:
    from test_secrets import customer_keys

    redactor = Redactor({})
    redactor.learn_specs(load_specs(spec_files()))
    keys = customer_keys()
    assert keys
    for key in keys:
        for name, form in forms(key).items():
            assert redactor.scrub(form) == MASK, name


def test_clean_masks_a_secret_learned_after_the_same_record_was_cleaned() -> None:
    """clean remembers cleaned strings and keys; learning a secret forgets them, so nothing cleaned earlier slips by."""
    redactor = Redactor({})
    record = {"message": f"gôt {SECRET}", SECRET: "under a key", "steps": [f"x {SECRET}", {"short": "exactly8"}]}
    assert redactor.clean(record) == record  # nothing is secret yet
    redactor.add(SECRET)
    redactor.add("exactly8")  # the shortest secret learned: 8 characters, in an 8-character value
    cleaned = redactor.clean(record)
    assert cleaned == {"message": f"gôt {MASK}", MASK: "under a key", "steps": [f"x {MASK}", {"short": MASK}]}


def test_clean_bounds_every_string_and_notes_its_length() -> None:
    redactor = Redactor({})
    redactor.add(SECRET)
    huge = "x" * (MAX_TEXT - 5) + SECRET + "y" * 10_485_760
    cleaned = redactor.clean({"message": huge, huge: 1})
    (key,) = (k for k in cleaned if k != "message")
    for text in (cleaned["message"], key):
        assert len(text) <= MAX_TEXT + len(f" ... [truncated: {len(huge)} chars]")
        assert text.endswith(f" ... [truncated: {len(huge)} chars]")
        assert "s3cr" not in text and MASK in text  # a secret across the cut is masked whole, not half-kept


def test_clean_makes_any_value_json_and_utf8_safe() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    class Sneaky(str):
        def __str__(self) -> str:
            raise RuntimeError

        def __len__(self) -> int:
            raise RuntimeError

    class Odd(dict):
        def items(self):
            raise RuntimeError

    nested: list = []
    node = nested
    for _ in range(10_000):
        node.append([])
        node = node[0]
    cyclic: list = []
    cyclic.append(cyclic)
    value = {
        "surrogate": "bad \udc80 text \ud800",
        "\udcff key": 1,
        ("tuple", "key"): 2,
        "hostile": Hostile(),
        "sneaky": Sneaky("fine"),
        "odd": Odd(a=1),
        "bytes": b"\x00\xff",
        "nan": float("nan"),
        "huge int": 10**5000,
        "nested": nested,
        "cyclic": cyclic,
        "set": {1},
    }
    cleaned = Redactor({}).clean(value)
    line = json.dumps(cleaned, ensure_ascii=False, allow_nan=False)
    line.encode("utf-8")  # never raises
    assert cleaned["surrogate"] == "bad \ufffd text \ufffd"
    assert "\ufffd key" in cleaned
    assert cleaned["hostile"] == "<unprintable Hostile: repr() raised RuntimeError>"
    assert cleaned["sneaky"] == "fine" and cleaned["odd"] == {"a": 1}
    assert cleaned["nan"] == "nan" and cleaned["huge int"].startswith("<unprintable int: repr() raised")
    assert "nested too deep" in line


def test_record_writer_never_loses_a_record(tmp_path: Path) -> None:
    redactor = Redactor({"GSPC_TEST_TOKEN": "planted-token-3f9a1c77e0"})
    writer = RecordWriter(tmp_path / "records" / "main.jsonl", redactor)
    writer.write({"outcome": "passed", "steps": [{"error": {"message": "m\udc80 planted-token-3f9a1c77e0"}}]})
    writer.write({"outcome": "passed", "steps": [{"result": {"system": {"x": "y" * 10_485_760}}}]})
    writer.close()
    written = list(read_records(tmp_path / "records"))
    assert [r["outcome"] for r in written] == ["passed", "passed"]
    assert written[0]["steps"][0]["error"]["message"] == "m\ufffd ***"
    assert (tmp_path / "records" / "main.jsonl").stat().st_size < 3 * MAX_TEXT


def test_read_records_skips_what_is_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n[1, 2]\n"text"\n' + b"9" * 5000 + b'\n{"b": "\xe2\x82"}\n' + b"[" * 100_000 + b"\n")
    assert list(read_records(path)) == [{"a": 1}, {"b": "\ufffd"}]


def test_scrub_tree_rewrites_only_files_with_a_secret(tmp_path: Path) -> None:
    redactor = Redactor({})
    redactor.add(KEY)
    redactor.add(SECRET)
    (tmp_path / "allure").mkdir()
    (tmp_path / "junit.xml").write_text(f'<failure message="{SECRET.replace("&", "&amp;")}"/>', encoding="utf-8")
    (tmp_path / "allure" / "a-result.json").write_text(json.dumps({"m": KEY.hex()}), encoding="utf-8")
    (tmp_path / "allure" / "clean.txt").write_text("nothing here", encoding="utf-8")
    binary = b"\xff\xfe\x00" + SECRET.encode() + b"\x80"
    (tmp_path / "blob.bin").write_bytes(binary)
    # a large file with a secret across each of the first two 1 MiB chunk boundaries
    chunk = 1 << 20
    big = "a" * (chunk - 10) + SECRET + "b" * (chunk - 10 - len(SECRET)) + base64.b64encode(KEY).decode() + "c" * 99
    (tmp_path / "index.html").write_text(big, encoding="utf-8")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text(SECRET, encoding="utf-8")
    (tmp_path / "link.txt").symlink_to(outside)

    assert scrub_tree(tmp_path, redactor) == 4
    assert (tmp_path / "allure" / "clean.txt").read_text(encoding="utf-8") == "nothing here"
    assert (tmp_path / "blob.bin").read_bytes() == b"\xff\xfe\x00***\x80"
    assert outside.read_text(encoding="utf-8") == SECRET  # a link out of the folder is not followed
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            text = path.read_text(encoding="utf-8", errors="replace")
            for form in [*forms(KEY).values(), *forms(SECRET.encode()).values(), "s3cr3t"]:
                assert form not in text, (path, form)
    assert "gspc-scrub" not in " ".join(p.name for p in tmp_path.rglob("*"))
    assert scrub_tree(tmp_path, redactor) == 0


def test_printable_escapes_terminal_controls() -> None:
    text = "red \x1b[31mX\x1b[0m\rover\x07 \u202eevil\u202c \udc80 keep\n\ttabs é"
    assert printable(text) == "red \\x1b[31mX\\x1b[0m\\x0dover\\x07 \\u202eevil\\u202c \\udc80 keep\n\ttabs é"
    assert printable("a" * 100, 10) == "a" * 10 + "... [truncated: 100 chars]"


def odd_records() -> list[dict]:
    """Records as a foreign or hand-edited file may hold them: lone surrogates, huge text, values of the wrong type."""
    base = {"run_id": "r1", "target": "memory", "driver": "memory", "spec": "delete", "spec_id": "GSP-46",
            "spec_title": "t", "spec_version": 1, "spec_sha256": "0" * 64, "clause": "delete.c", "rule": "R",
            "level": "MUST", "status": "accepted", "case": "c", "title": "t", "waiver": None,
            "leftovers": []}  # fmt: skip
    return [
        {**base, "nodeid": "delete::c[memory]", "outcome": "failed", "reason": "bad \udc80 " + "x" * 10_485_760,
         "params": {"p": 1}, "duration": "slow", "steps": ["not a trace", {"op": 3, "args": [1], "error": "e"}],
         "failure": {"step": "two", "op": None, "expected": {"a": 1}, "actual": "\ud800"}, "behaviour": 5},
        {**base, "nodeid": "delete::d[memory]", "case": "d", "outcome": "passed", "params": ["odd"],
         "duration": float("nan"), "steps": None, "failure": "text", "waiver": {"reason": 1}, "run_id": 2},
    ]  # fmt: skip


def test_reports_survive_odd_records(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from conformance.report import allure_results, certificate, diff, html

    records = odd_records()
    summary = {"targets": ["memory"], "verdicts": [], "behaviours": {}, "specs": {}}
    page = html.write_html(tmp_path, records, summary, baseline=records[::-1])
    page.read_text(encoding="utf-8")
    for record in records:
        allure_results.steps(record, 0)
    fake = SimpleNamespace(labels=[], parameters=[], links=[], steps=[], start=0, description="")
    allure_results.decorate(fake, records[0])
    changes = diff.compare(records[1:], records[:1])
    for text in (diff.text(changes, "a", "b"), diff.markdown(changes, "a", "b")):
        printable(text).encode("utf-8")
    derived = certificate.derive(records)
    certificate._short(derived).encode("utf-8", "backslashreplace")
