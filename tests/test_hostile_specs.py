"""Hostile spec and known-issues files: each is refused with one line ``file:line: message``, never a traceback."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from conftest import gspc
from test_spec_loader import GOOD

from conformance.engine.payloads import SizeError, evaluate
from conformance.spec.limits import SpecLimits
from conformance.spec.loader import SpecError, load_specs
from conformance.spec.paths import path_problem
from conformance.waivers import Waiver, check_waivers, load_waivers

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
STEP = "      - delete: {path: x}\n"
PARAMS = "    requires: [delete]\n"


def with_step(step: str, params: str = "") -> str:
    """GOOD with its one step replaced, and params added to its case."""
    return GOOD.replace(STEP, step).replace(PARAMS, PARAMS + params)


# (name, file bytes, the exact problem lines with F for the file)
HOSTILE_SPECS = [
    ("alias bomb", BOMB.encode(), ["F:1: anchors (&a) are not allowed: write the value out"]),
    (
        "alias",
        GOOD.replace("title: Example", "title: &t Example").encode(),
        ["F:2: anchors (&t) are not allowed: write the value out"],
    ),
    (
        "dotdot path",
        with_step("      - delete: {path: ../x}\n").encode(),
        ["F:18: case one step 1: path '../x' has a '..' segment"],
    ),
    (
        "absolute path",
        with_step("      - delete: {path: /etc/passwd}\n").encode(),
        ["F:18: case one step 1: path '/etc/passwd' is absolute (starts with /)"],
    ),
    (
        "dot segment",
        with_step("      - stat: {path: a/./b}\n").encode(),
        ["F:18: case one step 1: path 'a/./b' has a '.' segment"],
    ),
    (
        "empty segment",
        with_step("      - delete: {path: a//b}\n").encode(),
        ["F:18: case one step 1: path 'a//b' has an empty segment"],
    ),
    ("empty path", with_step("      - delete: {path: ''}\n").encode(), ["F:18: case one step 1: path '' is empty"]),
    (
        "backslash",
        with_step("      - delete: {path: 'a\\b'}\n").encode(),
        ["F:18: case one step 1: path 'a\\\\b' contains a backslash"],
    ),
    (
        "NUL",
        with_step('      - delete: {path: "a\\0b"}\n').encode(),
        ["F:18: case one step 1: path 'a\\x00b' contains a NUL byte"],
    ),
    (
        "prefix up",
        with_step("      - list: {prefix: ../}\n").encode(),
        ["F:18: case one step 1: prefix '../' has a '..' segment"],
    ),
    (
        "obj path",
        with_step("      - commit_append: {obj: {path: /x, mode: [append]}}\n").encode(),
        ["F:18: case one step 1: obj path '/x' is absolute (starts with /)"],
    ),
    (
        "param escapes",
        with_step('      - delete: {path: "{p}"}\n', "    params: {p: [ok, ../x]}\n").encode(),
        ["F:19: case one step 1: path '{p}' with p='../x' has a '..' segment"],
    ),
    (
        "labelled param escapes",
        with_step(
            '      - delete: {path: "dir/{p}"}\n', "    params: {p: {flat: x, up: ../../x, root: /x}}\n"
        ).encode(),
        ["F:19: case one step 1: path 'dir/{p}' with p='up' ('../../x') has a '..' segment (and 1 more values of p)"],
    ),
    (
        "param empty",
        with_step('      - delete: {path: "a/{p}"}\n', "    params: {p: ['']}\n").encode(),
        ["F:19: case one step 1: path 'a/{p}' with p='' has an empty segment"],
    ),
    (
        "product 10^10",
        with_step(
            STEP, "    params:\n" + "".join(f"      p{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" for i in range(10))
        ).encode(),
        [
            "F:1: the cases expand to 10000000000 runs, more than the limit of 100000 per file",
            "F:13: case one: params expand to 10000000000 runs, more than the limit of 10000",
        ],
    ),
    (
        "10 GiB random",
        with_step("      - write: {path: x, data: {random: 10GiB}}\n").encode(),
        ["F:18: case one step 1: size '10GiB' is 10737418240 bytes, more than the limit of 67108864"],
    ),
    (
        "10 GiB concat",
        with_step(
            "      - write: {path: x, data: {concat: [" + ", ".join(["{random: 60MiB}"] * 171) + "]}}\n"
        ).encode(),
        ["F:18: case one step 1: data of 10758389760 bytes is larger than the limit of 67108864 bytes"],
    ),
    (
        "10 GiB param",
        with_step('      - write: {path: x, data: {random: "{n}"}}\n', "    params: {n: [1, 10GiB]}\n").encode(),
        [
            "F:19: case one step 1: '{n}' with n='10GiB': size '10GiB' is 10737418240 bytes, "
            "more than the limit of 67108864"
        ],
    ),
    (
        "negative size",
        with_step("      - write: {path: x, data: {random: -1}}\n").encode(),
        ["F:18: case one step 1: negative size -1"],
    ),
    (
        "unknown unit",
        with_step("      - read: {path: x}\n        expect: {size: 4KB}\n").encode(),
        ["F:18: case one step 1: bad size '4KB' (use 12, 4KiB, 5MiB+1 or limit.NAME+1)"],
    ),
    (
        "slice offset",
        with_step("      - read: {path: x}\n        expect: {bytes: {slice: abc, offset: 1TiB}}\n").encode(),
        ["F:18: case one step 1: bad size '1TiB' (use 12, 4KiB, 5MiB+1 or limit.NAME+1)"],
    ),
    ("non-UTF-8", GOOD.encode().replace(b"text: One.", b"text: One\xff."), ["F:10: not UTF-8: byte 0xff at column 14"]),
    ("UTF-16", GOOD.encode("utf-16"), ["F:1: not UTF-8: byte 0xff at column 1"]),
    (
        "int key",
        GOOD.replace("source: here\n", "source: here\n1: one\n", 1).encode(),
        ["F:5: mapping key '1' is read as int, not a string: quote it"],
    ),
    (
        "list key",
        GOOD.replace("source: here\n", "source: here\n? [a, b]\n: one\n", 1).encode(),
        ["F:5: a mapping key must be a string, found a list"],
    ),
    (
        "bool key",
        GOOD.replace("source: here\n", "source: here\nyes: one\n", 1).encode(),
        ["F:5: mapping key 'yes' is read as bool, not a string: quote it"],
    ),
    (
        "tab",
        GOOD.replace("  - id: ex.one", "\t- id: ex.one").encode(),
        ["F:6: invalid YAML: found character that cannot start any token"],
    ),
    (
        "python tag",
        GOOD.replace("title: Example", "title: !!python/object/apply:os.system [ls]").encode(),
        ["F:2: tags (tag:yaml.org,2002:python/object/apply:os.system) are not allowed: write a plain value"],
    ),
    (
        "local tag",
        GOOD.replace("title: Example", "title: !mine Example").encode(),
        ["F:2: tags (!mine) are not allowed: write a plain value"],
    ),
    ("empty file", b"", ["F:1: the file is empty; expected a mapping"]),
    ("only comments", b"# nothing\n\n", ["F:1: the file is empty; expected a mapping"]),
    ("top-level list", b"- id: GSP-1\n", ["F:1: the top level is a list; expected a mapping"]),
    ("top-level scalar", b"GSP-1\n", ["F:1: the top level is a string; expected a mapping"]),
    ("two documents", (GOOD + "---\n" + GOOD).encode(), ["F:19: more than one YAML document (---) in the file"]),
    ("deep nesting", b"a: " + b"[" * 5000 + b"]" * 5000, ["F:1: nested more than 32 levels deep"]),
    (
        "huge value",
        b"title: " + b"x" * 100_000 + b"\n",
        ["F:1: a value of 100000 characters, more than the limit of 65536"],
    ),
    ("huge int", b"version: " + b"9" * 5000 + b"\n", [f"F:1: int {'9' * 40!r}... cannot be read"]),
    (
        "control character",
        b"id: a\x07b\n",
        ["F:1: invalid YAML: control characters are not allowed (character #x0007)"],
    ),
    (
        "truncated",
        GOOD[: GOOD.index("title: One holds.") + 10].encode(),
        ["F:13: cases/0: 'steps' is a required property"],
    ),
    (
        "unclosed flow",
        GOOD.replace("{path: x}", "{path: x").encode(),
        ["F:19: invalid YAML: did not find expected ',' or '}'"],
    ),
]

WAIVERS = "target: memory\nwaivers:\n  - case: one\n    reason: known\n    link: https://example.com\n"
HOSTILE_WAIVERS = [
    (
        "invalid expires",
        WAIVERS + "    expires: 2024-02-30\n",
        ["F:6: waivers/0/expires: '2024-02-30' is not a real date"],
    ),
    (
        "quoted invalid expires",
        WAIVERS + "    expires: '2023-13-01'\n",
        ["F:6: waivers/0/expires: '2023-13-01' is not a real date"],
    ),
    (
        "expires shape",
        WAIVERS + "    expires: tomorrow\n",
        ["F:6: waivers/0/expires: 'tomorrow' does not match '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'"],
    ),
    (
        "anchor",
        WAIVERS.replace("reason: known", "reason: &r known"),
        ["F:4: anchors (&r) are not allowed: write the value out"],
    ),
    ("alias bomb", BOMB, ["F:1: anchors (&a) are not allowed: write the value out"]),
    ("non-UTF-8", WAIVERS.replace("known", "kn\udcffown"), ["F:4: not UTF-8: byte 0xff at column 15"]),
    ("int key", WAIVERS + "    7: x\n", ["F:6: mapping key '7' is read as int, not a string: quote it"]),
    ("empty", "", ["F:1: the file is empty; expected a mapping"]),
    ("list", "- target: memory\n", ["F:1: the top level is a list; expected a mapping"]),
]


def _write(folder: Path, data: bytes | str) -> Path:
    path = folder / "ex.yaml"
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    path.write_bytes(data)
    return path


def _problems(path: Path, load) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(path)
    return [p.replace(str(path), "F") for p in caught.value.problems]


@pytest.mark.parametrize(("data", "expected"), [h[1:] for h in HOSTILE_SPECS], ids=[h[0] for h in HOSTILE_SPECS])
def test_hostile_spec_is_one_line_per_problem(tmp_path: Path, data: bytes, expected: list[str]) -> None:
    path = _write(tmp_path, data)
    started = time.perf_counter()
    assert _problems(path, lambda p: load_specs([p])) == expected
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("name", [h[0] for h in HOSTILE_SPECS][::4] + ["alias bomb", "param escapes", "non-UTF-8"])
def test_gspc_specs_lint_exits_2_without_traceback(tmp_path: Path, name: str) -> None:
    _, data, expected = next(h for h in HOSTILE_SPECS if h[0] == name)
    path = _write(tmp_path, data)
    done = gspc("specs", "lint", "--specs-dir", str(tmp_path), cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
    assert done.stderr.splitlines() == [line.replace("F", str(path), 1) for line in expected]


@pytest.mark.parametrize(("text", "expected"), [h[1:] for h in HOSTILE_WAIVERS], ids=[h[0] for h in HOSTILE_WAIVERS])
def test_hostile_known_issues_is_one_line_per_problem(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert _problems(_write(tmp_path, text), load_waivers) == expected


def test_a_date_where_a_string_is_expected_is_read_as_written(tmp_path: Path) -> None:
    (spec,) = load_specs([_write(tmp_path, GOOD.replace("title: Example", "title: 2024-02-30"))])
    assert spec.title == "2024-02-30"  # an impossible date is text, not a traceback


def test_fuzzed_files_never_raise_anything_but_spec_error(tmp_path: Path) -> None:
    rnd = random.Random(7)
    good = GOOD.encode()
    tried = 0
    for _ in range(150):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 12)):
            data[rnd.randrange(len(data))] = rnd.choice(b"[]{}:,-&*!|>'\"\t\n #?%@`0\xff~")
        for sample in (bytes(data), good[: rnd.randrange(len(good))], rnd.randbytes(rnd.randint(0, 400))):
            path = _write(tmp_path, sample)
            for load in (lambda p: load_specs([p]), load_waivers):
                tried += 1
                try:
                    load(path)
                except SpecError as exc:
                    assert all(line.startswith(f"{path}:") and line.split(":")[1].isdigit() for line in exc.problems)
    assert tried == 900


def test_limits_are_configurable(tmp_path: Path) -> None:
    text = with_step('      - write: {path: x, data: {random: "{n}"}}\n', "    params: {n: [1, 2, 3, 100MiB]}\n")
    path = _write(tmp_path, text)
    assert load_specs([path], limits=SpecLimits(max_payload=128 * 1024**2))
    with pytest.raises(SpecError, match="params expand to 4 runs, more than the limit of 3"):
        load_specs([path], limits=SpecLimits(max_expansions=3, max_payload=128 * 1024**2))
    with pytest.raises(SpecError, match="more than 10 keys and values in the file"):
        load_specs([path], limits=SpecLimits(max_nodes=10))


def test_evaluate_refuses_a_payload_over_the_cap_before_allocating() -> None:
    with pytest.raises(SizeError, match="larger than the limit"):
        evaluate({"concat": [{"random": "60MiB"}] * 171})
    with pytest.raises(SizeError, match="negative size"):
        evaluate({"random": -1})
    assert len(evaluate({"slice": {"random": "1KiB"}, "offset": 1000, "size": "1GiB"})) == 24


@pytest.mark.parametrize(
    ("text", "prefix", "expected"),
    [
        ("a/b", False, None),
        ("", True, None),
        ("a/", True, None),
        ("a//", True, "has an empty segment"),
        ("a/", False, "has an empty segment"),
        ("..", False, "has a '..' segment"),
        ("/a", True, "is absolute (starts with /)"),
        ("unicode-路径/with space", False, None),
    ],
)
def test_path_problem(text: str, prefix: bool, expected: str | None) -> None:
    assert path_problem(text, prefix=prefix) == expected


def test_check_waivers_names_what_does_not_exist(tmp_path: Path) -> None:
    may = "  - {id: ex.two, rule: DEL-2, level: MAY, status: adopted, text: Two., source: here}\n"
    specs = load_specs([_write(tmp_path, GOOD.replace("cases:\n", may + "cases:\n"))])

    def waiver(**fields: str) -> Waiver:
        return Waiver(**{"target": "memory", "reason": "r", "link": "l", "file": "K", "line": 3, **fields})

    waivers = [
        waiver(spec="ex", case="one", clause="ex.one"),
        waiver(target="s3@nowhere", case="one"),
        waiver(spec="nope", case="one"),
        waiver(case="two"),
        waiver(clause="ex.three"),
        waiver(spec="ex", case="one", clause="ex.other"),
        waiver(spec="ex", case="one", clause="ex.two"),
    ]
    assert check_waivers(waivers, specs, {"memory", "fs"}) == [
        "K:3: target 's3@nowhere' is not being run (running: fs, memory)",
        "K:3: no spec 'nope' (known: ex)",
        "K:3: no case 'two' in any spec",
        "K:3: no clause 'ex.three' in any spec",
        "K:3: no clause 'ex.other' in spec ex",
        "K:3: case 'one' checks clause ex.one, not ex.two",
    ]


def test_waiver_line_is_its_entry(tmp_path: Path) -> None:
    (loaded,) = load_waivers(_write(tmp_path, WAIVERS))
    assert loaded.line == 3


def test_only_an_impl_case_names_an_otherwise_clause(tmp_path: Path) -> None:
    spec = tmp_path / "otherwise.yaml"
    spec.write_text(
        "id: GSP-9001\ntitle: t\nversion: 1\nsource: s\nclauses:\n"
        "  - {id: x.must, rule: DEL-1, level: MUST, status: adopted, text: t, source: s}\n"
        "cases:\n  - id: c\n    clause: x.must\n    title: t\n    requires: [delete]\n    steps:\n"
        "      - delete: {path: p}\n        expect: {otherwise: x.must}\n",
        encoding="utf-8",
    )
    done = gspc("specs", "lint", "--specs-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{spec}:8: case c: only a case of an IMPL clause names an otherwise clause" in done.stdout + done.stderr
