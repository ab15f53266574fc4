"""Where a driver raised an exception outside the error taxonomy: its last driver-side frames, for the trace."""

from __future__ import annotations

import os
import traceback
from typing import TYPE_CHECKING, Any

from conformance.engine.safe import bounded
from conformance.errors import StorageError

if TYPE_CHECKING:
    from conformance.engine.runner import CaseRun
    from conformance.redact import Redactor

FRAMES = 5  # enough to find the line that raised, few enough to keep a record small
_HARNESS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the conformance package
_ADAPTERS = os.path.join(_HARNESS, "adapters")  # the bundled drivers: their frames are driver frames


def frames(error: BaseException, redactor: Redactor) -> dict[str, Any]:
    """``{"frames": [...]}`` for an exception outside the taxonomy (file, line, function; innermost last), else {}."""
    if isinstance(error, StorageError):
        return {}
    found = []
    for frame in traceback.extract_tb(error.__traceback__):
        file = os.path.abspath(frame.filename)
        if file.startswith(_HARNESS + os.sep) and not file.startswith(_ADAPTERS + os.sep):
            continue  # the tracker and engine frames say nothing about the driver
        shown = os.path.relpath(file) if file.startswith(os.getcwd() + os.sep) else file
        found.append({"file": bounded(redactor.scrub(shown), 300), "line": frame.lineno or 0,
                      "function": bounded(redactor.scrub(frame.name), 200)})  # fmt: skip
    return {"frames": found[-FRAMES:]}


def locate(run: CaseRun) -> None:
    """Add the failing step's driver frames, if any, to what the failure says it got."""
    failure = run.failure
    step = failure.get("step") if failure else None
    if not isinstance(step, int) or not 0 < step <= len(run.steps):
        return
    found = (run.steps[step - 1].get("error") or {}).get("frames")
    if not found:
        return
    shown = [f"{f['file']}:{f['line']} in {f['function']}" for f in reversed(found)]
    where = f"; raised at {shown[0]}" + (f", called from {', '.join(shown[1:])}" if shown[1:] else "")
    for entry in [failure, *failure.get("clauses", [])]:
        if entry.get("step") == step and where not in entry["actual"]:
            entry["actual"] = bounded(entry["actual"] + where)
