"""Rules that hold for every call, checked on every step of every case; each breach names its own clause.

Only taxonomy errors escape (``errors.taxonomy``); every taxonomy error carries its envelope
(``errors.envelope``); results have the interface's types and shapes (``storager.result-types``);
create_append keeps the path (``append.no-autorename``) and sets the append bit (``append.create-mode``);
no secret the harness knows comes back in a message, a result or ``Object.system`` (``errors.no-secret-echo``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformance.driver import OBJECT_OPERATIONS, Mode, Object
from conformance.engine.safe import attr, equal, rep, text, type_name
from conformance.errors import StorageError
from conformance.redact import Redactor
from conformance.spec.model import Clause

TAXONOMY = "errors.taxonomy"
ENVELOPE = "errors.envelope"
RESULTS = "storager.result-types"
RENAME = "append.no-autorename"
SECRETS = "errors.no-secret-echo"

MODE_BITS = sum(Mode)  # every GSP-25 bit; any other bit is not a mode
MODE_CLAUSE = "append.create-mode"
#: The clauses the invariants check: on every step, so in a case of any spec.
CHECKED = frozenset({TAXONOMY, ENVELOPE, RESULTS, RENAME, SECRETS, MODE_CLAUSE})
RETURNS = {
    "write": "an Object",
    "stat": "an Object",
    "create_append": "an Object",
    "read": "bytes",
    "write_append": "an int",
}
PATHED = frozenset({"write", "stat", "create_append"})  # operations whose Object is the path asked for


@dataclass(frozen=True)
class Breach:
    """One invariant a step broke: its clause and what held instead; ``unusable``: the result cannot be read."""

    clause: str
    expected: str
    actual: str
    unusable: bool = False


@functools.cache
def clauses() -> dict[str, tuple[str, Clause]]:
    """Every clause of the bundled specs by id, with its spec's name: invariants and IMPL fallbacks live there."""
    from conformance.spec.loader import load_specs, spec_files  # the loader pulls in jsonschema: only when judged

    return {cid: (spec.name, clause) for spec in load_specs(spec_files()) for cid, clause in spec.clauses.items()}


def check(
    op: str, path: str | None, args: dict[str, Any], outcome: tuple[Any, BaseException | None], redactor: Redactor
) -> list[Breach]:
    """Every invariant the step broke, in a fixed order."""
    result, error = outcome
    if error is not None:
        found = _error_breaches(op, path, error)
        leaked = _leak(redactor, [text(error), text(attr(error, "message", ""))])
    else:
        found = _result_breaches(op, path, args, result)
        leaked = _leak(redactor, _texts(result)) if not any(b.unusable for b in found) else None
    if leaked:
        found.append(Breach(SECRETS, "no secret of the harness in what the driver returns", leaked))
    return found


def _error_breaches(op: str, path: str | None, error: BaseException) -> list[Breach]:
    if not isinstance(error, StorageError):
        name = f"{text(type(error).__module__)}.{type_name(error)}"
        return [Breach(TAXONOMY, "a taxonomy error (StorageError)", f"raw {name} escaped the driver: {text(error)}")]
    want_path = None if op in OBJECT_OPERATIONS else path
    got_op, got_path = attr(error, "op"), attr(error, "path")
    if equal(got_op, op) and equal(got_path, want_path):
        return []
    expected = f"{type_name(error)} with op={op!r} path={want_path!r}"
    return [Breach(ENVELOPE, expected, f"{type_name(error)} with op={rep(got_op)} path={rep(got_path)}")]


def _result_breaches(op: str, path: str | None, args: dict[str, Any], result: Any) -> list[Breach]:
    if op == "list":
        return _listing_breaches(args.get("prefix", path), result)
    wanted = RETURNS.get(op)
    if wanted == "bytes" and not isinstance(result, bytes | bytearray):
        return [Breach(RESULTS, "read to return bytes", f"read returned {type_name(result)}", True)]
    if wanted == "an int" and (not isinstance(result, int) or isinstance(result, bool)):
        return [Breach(RESULTS, "write_append to return an int", f"write_append returned {type_name(result)}", True)]
    if wanted != "an Object":
        return []
    problem = _object_problem(result)
    if problem:
        return [Breach(RESULTS, f"{op} to return an Object", f"{op} returned {problem}", True)]
    found = []
    if op in PATHED and not equal(result.path, path):
        clause = RENAME if op == "create_append" else RESULTS
        found.append(Breach(clause, f"{op} to return the Object at {path!r}", f"an Object at {rep(result.path)}"))
    if op == "write" and (size := attr(result, "size")) is not None:  # None: the driver does not say
        written = len(args.get("data", b""))
        if not equal(size, written):
            found.append(Breach(RESULTS, f"write to return the size written, {written}", f"size {rep(size)}"))
    if op == "create_append" and Mode.APPEND not in Mode(int.__int__(result.mode)):
        wanted = "create_append to return an Object with the append bit"
        found.append(Breach(MODE_CLAUSE, wanted, f"mode {rep(result.mode)}"))
    return found


def _listing_breaches(prefix: str | None, result: Any) -> list[Breach]:
    if not isinstance(result, list):  # the tracker collects any iterable; anything else raised there
        return [Breach(RESULTS, "list to yield Objects", f"list returned {type_name(result)}", True)]
    for index, obj in enumerate(result):
        problem = _object_problem(obj)
        if problem:
            return [Breach(RESULTS, "list to yield Objects", f"list yielded {problem} at position {index}", True)]
    outside = [o.path for o in result if not (isinstance(prefix, str) and o.path.startswith(prefix))]
    if outside:
        shown = ", ".join(rep(p) for p in outside[:5])
        return [Breach(RESULTS, f"every listed Object under {prefix!r}", f"{len(outside)} outside it: {shown}")]
    return []


def _object_problem(obj: Any) -> str | None:
    """What makes a value no usable Object (its type, a path that is no str, mode bits outside GSP-25), or None."""
    if not isinstance(obj, Object):
        return f"{type_name(obj)}, not an Object"
    if type(obj.path) is not str:
        return f"an Object whose path is {type_name(obj.path)}"
    problem = mode_problem(obj.mode)
    return f"an Object whose mode {problem}" if problem else None


def mode_problem(mode: Any) -> str | None:
    """Why a value is not a mode (an int of GSP-25 bits), or None."""
    if not isinstance(mode, int) or isinstance(mode, bool):
        return f"is {type_name(mode)}, not an int"
    bits = int.__int__(mode)  # the plain value: an int subclass may override its comparisons
    if bits < 0 or bits & ~MODE_BITS:
        shown = str(bits) if bits.bit_length() <= 64 else f"of {bits.bit_length()} bits"
        return f"{shown} has bits outside the GSP modes"
    return None


def _texts(result: Any) -> Iterable[str]:
    """The text fields of Objects a step returned (payload bytes are the caller's data, not an echo)."""
    objects = result if isinstance(result, list) else [result]
    for obj in objects:
        if not isinstance(obj, Object):
            continue
        yield from (text(v) for v in (obj.path, obj.etag, obj.content_type) if v is not None)
        system = obj.system
        if isinstance(system, dict):
            for key, value in dict.items(system):
                yield text(key)
                yield text(value)


def _leak(redactor: Redactor, texts: Iterable[str]) -> str | None:
    """The first text holding a secret form, masked (the record must not carry it either), or None."""
    for value in texts:
        scrubbed = redactor.scrub(value)
        if scrubbed != value:
            return f"a secret came back: {scrubbed[:300]}"
    return None
