"""Directory backends: a fresh temporary directory (``fs``), or a given absolute one (``fs@/data``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from conformance.backends import BackendError, Endpoint


class TempDir:
    """A temporary directory made for the run and removed after it (``dir.tmp``)."""

    service = "dir"
    default = True
    per_process = False

    def __init__(self, location: str | None = None) -> None:
        self.root: str | None = None

    def unavailable(self) -> str | None:
        return None

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        self.root = tempfile.mkdtemp(prefix="gspc-fs-")
        return Endpoint(options={"root": self.root})

    def close(self) -> None:
        root, self.root = self.root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


class LocalDir:
    """A directory the user names by absolute path (``dir.local``); it is left in place."""

    service = "dir"
    default = False
    per_process = True  # nothing to start

    def __init__(self, location: str | None = None) -> None:
        self.root = location or ""

    def unavailable(self) -> str | None:
        return None

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        if not os.path.isabs(self.root):
            raise BackendError(f"the directory must be an absolute path, not {self.root!r}")
        return Endpoint(options={"root": self.root})

    def close(self) -> None:
        return None
