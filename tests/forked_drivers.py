"""A test driver that notes which process started the worker it runs in."""

from __future__ import annotations

import os
from pathlib import Path

from conformance.adapters.memory import MemoryDriver


class ParentNoting(MemoryDriver):
    """The memory driver; opening it writes its parent's command line to ``parents/<pid>`` in the run's folder."""

    def __init__(self) -> None:
        super().__init__()
        folder = Path("parents")
        folder.mkdir(exist_ok=True)
        command = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ")
        (folder / str(os.getpid())).write_bytes(command)
