"""A driver author's first hour: naming a driver, reading what went wrong, starting from a skeleton."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import gspc, records, summary
from test_run import readme_driver

from conformance.spec.loader import bundled_specs_dir

RAW = """from conformance.adapters.memory import MemoryDriver


class Raw(MemoryDriver):
    name = "raw"

    def delete(self, path, **pairs):
        return self._call(path)

    def _call(self, path):
        raise RuntimeError("backend exploded")
"""


def test_a_raw_exception_is_recorded_with_the_driver_frames_that_raised_it(tmp_path: Path) -> None:
    (tmp_path / "rawstore.py").write_text(RAW, encoding="utf-8")
    done = gspc("run", "--driver", "rawstore:Raw", "--spec", "delete", "--out", "out", "--",
                "-k", "delete-missing and flat", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    (record,) = [r for r in records(tmp_path / "out") if r["outcome"] == "failed"]
    error = record["steps"][0]["error"]
    assert error["type"] == "RuntimeError"
    assert error["frames"] == [{"file": "rawstore.py", "line": 8, "function": "delete"},
                               {"file": "rawstore.py", "line": 11, "function": "_call"}]  # fmt: skip
    where = "raised at rawstore.py:11 in _call, called from rawstore.py:8 in delete"
    assert where in record["failure"]["actual"] and where in done.stdout
    assert "conformance/engine" not in json.dumps(error)  # harness frames are dropped


def _readme_driver(folder: Path, name: str = "mystore.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(readme_driver(), encoding="utf-8")
    return folder / name


@pytest.mark.parametrize("form", ["./sub/mystore.py:MyDriver", "sub/mystore.py:MyDriver", "ABS:MyDriver",
                                  "sub/mystore.py"])  # fmt: skip
def test_a_driver_file_is_named_by_path_with_or_without_its_class(tmp_path: Path, form: str) -> None:
    path = _readme_driver(tmp_path / "sub")
    name = form.replace("ABS", str(path))
    done = gspc("run", "--driver", name, "--spec", "Delete", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert {v["verdict"] for v in summary(tmp_path / "out")["verdicts"]} == {"conformant"}


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("mystore:MyDriver", "no module mystore in {cwd} or on PYTHONPATH; run gspc from the folder that holds "
         "mystore.py (cd), add that folder to PYTHONPATH, or name the file: path/to/mystore.py:MyDriver "
         "(--driver mystore:MyDriver)"),
        ("sub/mystore.py:MyDrivr", "sub/mystore.py has no MyDrivr (did you mean MyDriver?); driver classes in "
         "sub/mystore.py: MyDriver (--driver sub/mystore.py:MyDrivr)"),
        ("sub/mystor.py:MyDriver", "no file {cwd}/sub/mystor.py (did you mean mystore.py?)"),
        ("memry", "unknown driver 'memry' (did you mean memory?)"),
        ("sub/broken.py", "importing sub/broken.py failed: ModuleNotFoundError: No module named 'no_such_sdk' "
         "(sub/broken.py:1)"),
    ],
)  # fmt: skip
def test_a_driver_that_cannot_be_loaded_gets_one_line_saying_what_to_do(tmp_path: Path, name: str, said: str) -> None:
    _readme_driver(tmp_path / "sub")
    (tmp_path / "sub" / "broken.py").write_text("import no_such_sdk\n", encoding="utf-8")
    done = gspc("run", "--driver", name, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("gspc: ") and said.format(cwd=tmp_path) in line, line
    assert "Traceback" not in done.stdout + done.stderr


def test_a_module_next_to_the_user_is_suggested_with_its_class(tmp_path: Path) -> None:
    _readme_driver(tmp_path)
    done = gspc("run", "--driver", "mystore", cwd=tmp_path)
    assert done.returncode == 2 and "did you mean mystore:MyDriver?" in done.stderr


def test_a_declaration_error_names_the_class_given_and_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "half.py").write_text(
        "from conformance.driver import BaseDriver, Capabilities\n\n\n"
        "class Half(BaseDriver):\n    name = 'half'\n\n"
        "    def capabilities(self):\n        return Capabilities(operations={'write', 'create_append'})\n",
        encoding="utf-8",
    )
    done = gspc("run", "--driver", "half.py:Half", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert "driver half.py:Half (half.py:4): declares create_append but does not define it" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--level", "mist"], "gspc: argument --level: unknown level 'mist' (did you mean MUST?)"),
        (["--spec", "delet"], "gspc: unknown spec 'delet' (did you mean delete?)"),
        (["--target", "s3@mot"], "no s3 backend 'mot' (did you mean moto?)"),
        (["--target", "memry@x"], "unknown driver 'memry' (did you mean memory?)"),
        (["--target", "memory", "--option", "db"], "gspc: option 'db': expected [TARGET:]KEY=VALUE (--option)"),
        (["--bogus"], "gspc: unrecognized arguments: --bogus (see gspc run --help; pytest arguments go after --)"),
    ],
)
def test_usage_errors_are_one_line_naming_the_option_as_typed(tmp_path: Path, args: list[str], said: str) -> None:
    done = gspc("run", *args, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert said in line and "--gspc-" not in line, line


def test_levels_and_specs_are_case_insensitive_and_a_spec_file_is_accepted(tmp_path: Path) -> None:
    spec = str(bundled_specs_dir() / "delete.yaml")
    done = gspc("run", "--target", "memory", "--spec", spec, "--spec", "gsp-47", "--level", "must", "--out", "out",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    ran = records(tmp_path / "out")
    assert {r["spec"] for r in ran} == {"delete", "errors"} and {r["level"] for r in ran} == {"MUST"}


def test_drivers_describes_a_file_driver_and_lists_every_bundled_target(tmp_path: Path) -> None:
    _readme_driver(tmp_path)
    one = gspc("drivers", "./mystore.py:MyDriver", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[0] == "./mystore.py:MyDriver  (mystore:MyDriver, mystore.py:6)"
    assert "no service" in one.stdout and "can run here; declares:" in one.stdout
    assert "read (offset, size)" in one.stdout
    s3 = gspc("drivers", "s3@moto", cwd=tmp_path)
    assert "service s3; backends: " in s3.stdout and "moto-server" in s3.stdout and "write (content_type" in s3.stdout
    every = gspc("drivers", cwd=tmp_path, env={k: v for k, v in os.environ.items() if "DROPBOX" not in k})
    listed = dict(line.strip().split(None, 1) for line in every.stdout.split("bundled targets:\n")[1].splitlines()
                  if line.startswith("  "))  # fmt: skip
    bundled = {"memory", "fs", "s3@moto", "s3@moto-server", "s3@ministack", "dropbox@emulator", "dropbox@live"}
    assert bundled <= set(listed)
    assert listed["memory"] == "can run here"
    assert listed["dropbox@live"].startswith("cannot run here: no Dropbox credentials")
    assert gspc("drivers", "mystor.py", cwd=tmp_path).stderr.startswith("gspc: driver 'mystor.py': no file")


FILLED = {
    "write": "self.client[path] = bytes(data)\n        return Object(path=path, mode=Mode.READ, size=len(data))",
    "read": "body = self._get('read', path)[int(pairs.get('offset', 0)) :]\n"
    "        return body if pairs.get('size') is None else body[: int(pairs['size'])]",
    "stat": "return Object(path=path, mode=Mode.READ, size=len(self._get('stat', path)))",
    "delete": "self.client.pop(path, None)",
    "list": "for path in sorted(p for p in self.client if p.startswith(prefix)):\n"
    "            yield Object(path=path, mode=Mode.READ, size=len(self.client[path]))",
}
GET = """
    def _get(self, op, path):
        try:
            return self.client[path]
        except KeyError as exc:
            raise errors.ObjectNotExist(op=op, path=path, driver=self.name) from exc
"""


def _fill_in(skeleton: str) -> str:
    """The skeleton as its author fills it in: five operations implemented on a dict, and declared."""
    text = skeleton.replace("operations=set(),", 'operations={"write", "read", "stat", "delete", "list"},\n'
                            '            pairs={"read": {"offset", "size"}},')  # fmt: skip
    text = text.replace("self.options = options", "self.client: dict[str, bytes] = {}")
    for op, body in FILLED.items():
        stub = rf'raise errors\.NotImplemented\("{op}: not implemented yet".*'
        text, n = re.subn(stub, lambda _, body=body: body, text)
        assert n == 1, op
    return text + GET


def test_init_writes_a_skeleton_that_certifies_and_then_a_filled_in_driver_that_does(tmp_path: Path) -> None:
    done = gspc("init", "mystore", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    target = "mystore.py:MystoreDriver"
    assert f"gspc certify {target} --known-issues known-issues.yaml" in done.stdout
    known = yaml.safe_load((tmp_path / "known-issues.yaml").read_text(encoding="utf-8"))
    assert known == {"target": target, "waivers": []}
    workflow = yaml.safe_load((tmp_path / ".github/workflows/gspc.yml").read_text(encoding="utf-8"))
    commands = [step.get("run", "") for step in workflow["jobs"]["certify"]["steps"]]
    assert f"gspc certify {target} --known-issues known-issues.yaml --out certification" in commands
    skeleton = (tmp_path / "mystore.py").read_text(encoding="utf-8")
    assert skeleton.count("raise errors.NotImplemented(") == 8 and "# operations={" in skeleton

    bare = gspc("certify", target, "--known-issues", "known-issues.yaml", "--out", "bare", cwd=tmp_path)
    assert bare.returncode == 0, bare.stdout[-2000:] + bare.stderr
    verdicts = {v["verdict"] for v in summary(tmp_path / "bare")["verdicts"]}
    assert verdicts <= {"refuses-correctly", "not-applicable"} and "refuses-correctly" in verdicts

    (tmp_path / "mystore.py").write_text(_fill_in(skeleton), encoding="utf-8")
    filled = gspc("certify", target, "--known-issues", "known-issues.yaml", "--out", "filled", cwd=tmp_path)
    assert filled.returncode == 0, filled.stdout[-3000:] + filled.stderr
    by_spec = {v["spec"]: v["verdict"] for v in summary(tmp_path / "filled")["verdicts"]}
    assert by_spec["delete"] == by_spec["errors"] == "conformant"
    assert by_spec["append"] == by_spec["sse"] == "refuses-correctly"
    again = gspc("init", "mystore", cwd=tmp_path)
    assert again.returncode == 2 and "already there; nothing was written (gspc init mystore)" in again.stderr


def test_the_run_ends_with_a_reason_per_warn_and_fail_cell_counts_in_outcome_words_and_the_report(
    tmp_path: Path,
) -> None:
    (tmp_path / "known.yaml").write_text(
        "target: broken_drivers:StatLosesSize\nwaivers:\n  - clause: append.complete\n    reason: sizes come later\n"
        "    link: https://tracker.example/42\n",
        encoding="utf-8",
    )
    done = gspc("run", "--driver", "broken_drivers:StatLosesSize", "--spec", "append", "--spec", "sse",
                "--known-issues", "known.yaml", "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "report: out/index.html"
    totals = summary(tmp_path / "out")["totals"]
    counted = next(line for line in lines if line.startswith("cases: ")).removeprefix("cases: ").split(", ")
    assert {word: int(n) for n, word in (c.split(" ") for c in counted)} == totals
    assert "skipped" not in counted and "xfailed" not in " ".join(counted)
    reasons = [line.strip() for line in lines if line.startswith("  broken_drivers:StatLosesSize ")]
    assert reasons == [
        "broken_drivers:StatLosesSize append: warn: SHOULD failed: append.create-empty, append.create-replaces, "
        "append.no-autorename; waived: append.complete; known issue: sizes come later (https://tracker.example/42)",
        "broken_drivers:StatLosesSize sse: FAIL: MUST failed: sse.refused-when-undeclared; SHOULD failed: sse.c-stat, "
        "sse.s3-info",
    ]
