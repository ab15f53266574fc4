"""One case from start to finish, without pytest: gate it on the target's declaration, run it, clean up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.backends import FaultInjector
from conformance.driver import Capabilities
from conformance.engine.interrupts import CaseTimeout
from conformance.engine.payloads import MAX_PAYLOAD
from conformance.engine.runner import CaseRun, needs_fault_proxy, run_case
from conformance.engine.tracker import Tracker
from conformance.redact import Redactor
from conformance.spec.model import Case


def gate(case: Case, caps: Capabilities, target: str, has_faults: bool) -> str | None:
    """Why the case does not apply to the target (its declaration, or no fault proxy), or None."""
    missing = [t for t in case.requires if not caps.has(t)]
    if missing:
        return f"{target} does not declare {', '.join(missing)}"
    present = [t for t in case.unless if caps.has(t)]
    if present:
        return f"{target} declares {', '.join(present)}; this case checks its absence"
    if needs_fault_proxy(case) and not has_faults:
        return f"{target} has no fault proxy in front of its backend"
    return None


def execute(
    case: Case,
    params: Mapping[str, Any],
    tracker: Tracker,
    caps: Capabilities,
    redactor: Redactor,
    run: CaseRun,
    cap: int = MAX_PAYLOAD,
    faults: FaultInjector | None = None,
    list_page_size: int | None = None,
) -> CaseRun:
    """Run the case's steps into ``run``, then clean up into ``run.leftovers`` (paths still there after it).

    A deadline or a real Ctrl-C skips the cleanup (a hung driver would hang it too, and Ctrl-C means now):
    every path it created is a leftover, journalled for ``gspc clean``; the exception goes on to the caller.
    """
    try:
        run_case(case, params, tracker, caps.limits, redactor, run, cap, faults, list_page_size)
    except (CaseTimeout, KeyboardInterrupt):
        run.leftovers = list(tracker.created)
        raise
    except BaseException:
        run.leftovers = tracker.cleanup()
        raise
    run.leftovers = tracker.cleanup()
    return run
