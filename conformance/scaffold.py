"""``gspc init NAME``: a driver skeleton that already certifies, an empty known-issues file and a CI workflow."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

DRIVER = Template('''\
"""$name: a GSP storage driver. Fill in one operation at a time, declare it, and run `gspc certify $target`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conformance import errors
from conformance.driver import BaseDriver, Capabilities, Mode, Object  # noqa: F401 (Mode: for the Objects you return)


class $cls(BaseDriver):
    name = "$name"

    def __init__(self, **options: str) -> None:  # --option key=value arrives here as a keyword string
        self.options = options  # build your SDK client here; secrets come from the environment

    def capabilities(self) -> Capabilities:
        # Declare exactly what you implement: declared operations and pairs get the positive cases,
        # undeclared ones the cases that check you refuse them (NotImplemented, PairUnsupported).
        return Capabilities(
            operations=set(),
            # operations={"write", "read", "stat", "delete", "list"},
            # operations={..., "create_append", "write_append", "commit_append"},  # appendable objects
            # pairs={"read": {"offset", "size"}, "write": {"content_type"}},  # the pairs each operation accepts
            # limits={"write_size_maximum": 5 * 2**30},  # GSP-97 limits, in bytes or counts
        )

    # Each operation: check its pairs, call your SDK, map its errors to conformance.errors (keep the SDK's
    # exception as the cause: `raise errors.ObjectNotExist(op=..., path=..., driver=self.name) from exc`).

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        raise errors.NotImplemented("write: not implemented yet", op="write", path=path, driver=self.name)

    def read(self, path: str, **pairs: Any) -> bytes:
        self.check_pairs("read", pairs, path)
        raise errors.NotImplemented("read: not implemented yet", op="read", path=path, driver=self.name)

    def stat(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("stat", pairs, path)
        raise errors.NotImplemented("stat: not implemented yet", op="stat", path=path, driver=self.name)

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)  # a missing path is not an error (GSP-46)
        raise errors.NotImplemented("delete: not implemented yet", op="delete", path=path, driver=self.name)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        raise errors.NotImplemented("list: not implemented yet", op="list", path=prefix, driver=self.name)

    def create_append(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("create_append", pairs, path)
        raise errors.NotImplemented("create_append: not implemented yet", op="create_append", path=path,
                                    driver=self.name)

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self.check_pairs("write_append", pairs)
        self.check_append("write_append", obj)
        raise errors.NotImplemented("write_append: not implemented yet", op="write_append", driver=self.name)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        self.check_pairs("commit_append", pairs)
        self.check_append("commit_append", obj)
        raise errors.NotImplemented("commit_append: not implemented yet", op="commit_append", driver=self.name)
''')

KNOWN_ISSUES = Template("""\
# Known issues of $target: failures you cannot fix yet, each with a reason and a link.
# gspc certify --known-issues $known turns them into "waived" (the verdict then has warnings).
target: $target
waivers: []
#  - clause: delete.missing-ok          # or case: delete-missing (optionally spec: delete)
#    reason: the service reports 404 on delete of a missing key
#    link: https://tracker.example/123
#    expires: 2027-06-30                # optional: after this date the failure counts again
""")

WORKFLOW = Template("""\
# Certifies $target on every push and pull request; the certificate, badge and report are kept as
# an artifact. gspc exits 0 when conformant (warnings and not-implemented specs allowed), 1 when a
# MUST clause fails, 2 on a usage or configuration error, 3 when the run is incomplete.
name: gsp-conformance

on:
  push:
  pull_request:

permissions:
  contents: read

jobs:
  certify:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: python -m pip install gsp-conformance  # and your driver's own dependencies
      - run: gspc certify $target --known-issues $known --out certification
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: certification
          path: certification/
""")

KNOWN = "known-issues.yaml"
WORKFLOW_PATH = ".github/workflows/gspc.yml"


class ScaffoldError(Exception):
    """The name cannot make a driver, or a file it would write is already there."""


def init(name: str, folder: Path) -> tuple[str, list[Path]]:
    """Write NAME.py, known-issues.yaml and a CI workflow into ``folder``; the target they name and the paths."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ScaffoldError(f"{name!r} cannot name a driver module: use lower-case letters, digits and _")
    cls = "".join(part.capitalize() for part in name.split("_")) + "Driver"
    target = f"{name}.py:{cls}"
    values = {"name": name, "cls": cls, "target": target, "known": KNOWN}
    files = {
        folder / f"{name}.py": DRIVER,
        folder / KNOWN: KNOWN_ISSUES,
        folder / WORKFLOW_PATH: WORKFLOW,
    }
    present = [str(path) for path in files if path.exists()]
    if present:
        raise ScaffoldError(f"{', '.join(present)} already there; nothing was written")
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values), encoding="utf-8")
    return target, list(files)
