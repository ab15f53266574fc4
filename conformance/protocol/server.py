"""The driver's end of the protocol for Python drivers: ``serve(driver)`` answers requests on stdin and stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from conformance.driver import OPERATIONS, DriverError, Object, check_driver
from conformance.protocol import wire

CHUNK = 1 << 20
LIST_LIMIT = 10_000  # the harness reads no more of a listing; a runaway iterator must not hang the answer
REFUSED = 2  # exit status after refusing a start


def serve(driver: Any, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    """Answer requests until stop or end of input; ``driver`` is an instance, or a class built with the start's options.

    Without streams it serves on this process's stdin and stdout, and points stdout (the file
    descriptor too) at stderr first, so a stray print cannot corrupt the protocol. Returns the exit status.
    """
    if stdout is None:
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    session = _Session(driver)
    for line in _lines(stdin or sys.stdin.buffer.raw):
        if not line.strip():
            continue
        reply = session.answer(line)
        if reply is not None:
            stdout.write(_line(reply))
            stdout.flush()
        if session.status is not None:
            return session.status
    return 0


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of a stream, read a megabyte at a time (a payload's line is megabytes long)."""
    read = getattr(stream, "read1", stream.read)
    buffer = bytearray()
    while chunk := read(CHUNK):
        start = len(buffer)
        buffer += chunk
        end = buffer.find(b"\n", start)
        while end >= 0:
            yield bytes(buffer[:end])
            del buffer[: end + 1]
            end = buffer.find(b"\n")
    if buffer:
        yield bytes(buffer)


class _Session:
    """One process's conversation: the start, then operations on the driver it built."""

    def __init__(self, driver: Any) -> None:
        self.factory = driver
        self.driver: Any = None
        self.status: int | None = None  # set when the conversation is over

    def answer(self, line: bytes) -> dict[str, Any] | None:
        try:
            request = wire.loads(line)
        except wire.WireError as exc:
            return _refusal(None, f"malformed request: {exc}")
        seq, op = request.get("seq"), request.get("op")
        if op == wire.STOP:
            self.status = 0
            return None
        if op == wire.START:
            return self._start(seq, request)
        if self.driver is None:
            return _refusal(seq, f"the first request must be start, not {op!r}")
        if op not in OPERATIONS:
            return _refusal(seq, f"unknown op {op!r} (known: start, stop, {', '.join(OPERATIONS)})")
        try:
            return {"seq": seq, "result": self._call(op, request)}
        except wire.WireError as exc:
            return _refusal(seq, f"malformed {op} request: {exc}")
        except Exception as exc:  # anything the driver raised goes back as its error, typed or not
            return {"seq": seq, "error": wire.error_json(exc)}

    def _start(self, seq: Any, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("version") != wire.VERSION:
            self.status = REFUSED
            version = request.get("version")
            return _refusal(seq, f"protocol version {version!r} is not supported (this driver speaks {wire.VERSION})")
        options = wire.value(request.get("options") or {})
        try:
            self.driver = self._build(options)
            caps = check_driver(self.driver)
        except Exception as exc:  # a driver that cannot be built or declares nonsense refuses the start
            self.status = REFUSED
            return {"seq": seq, "error": {"class": "DriverError", "message": str(exc)}}
        result = {"version": wire.VERSION, "name": self.driver.name, "capabilities": wire.capabilities_json(caps)}
        if getattr(self.driver, "service", None):
            result["service"] = self.driver.service
        return {"seq": seq, "result": result}

    def _build(self, options: dict[str, Any]) -> Any:
        if isinstance(self.factory, type):
            return self.factory(**options)
        if options:
            raise DriverError(f"this driver was built before the start and takes no options: {sorted(options)}")
        return self.factory

    def _call(self, op: str, request: dict[str, Any]) -> Any:
        pairs = wire.value(request.get("pairs") or {})
        if not isinstance(pairs, dict):
            raise wire.WireError("pairs must be a JSON object")
        method: Callable[..., Any] = getattr(self.driver, op)
        if op in ("write_append", "commit_append"):
            obj = request.get("object")
            target = wire.object_from(obj) if obj is not None else None
            if op == "commit_append":
                method(target, **pairs)
                return None
            written = method(target, wire.data(request.get("data"), "data"), **pairs)
            return {"written": _typed(op, written, int), "object": _object(op, target) if target else None}
        key = "prefix" if op == "list" else "path"
        if not isinstance(request.get(key), str):
            raise wire.WireError(f"{op} needs a string {key}")
        if op == "write":
            return _object(op, method(request[key], wire.data(request.get("data"), "data"), **pairs))
        result = method(request[key], **pairs)
        if op == "read":
            return bytes(_typed(op, result, bytes | bytearray))  # spliced into the line as base64
        if op == "list":
            return [_object(op, obj) for _, obj in zip(range(LIST_LIMIT), result, strict=False)]
        return None if op == "delete" else _object(op, result)


def _object(op: str, obj: Any) -> dict[str, Any]:
    return wire.object_json(_typed(op, obj, Object))


def _typed(op: str, result: Any, kind: Any) -> Any:
    """The result if it has the interface's type; else a TypeError the harness receives as an untyped error."""
    if not isinstance(result, kind) or (kind is int and isinstance(result, bool)):
        raise TypeError(f"{op} returned {type(result).__name__}, which the protocol cannot carry as its result")
    return result


def _refusal(seq: Any, message: str) -> dict[str, Any]:
    return {"seq": seq if isinstance(seq, int) else None, "error": {"class": wire.PROTOCOL_ERROR, "message": message}}


def _line(reply: dict[str, Any]) -> bytes:
    """The reply as a line; an error whose attributes cannot travel goes without them."""
    if isinstance(reply.get("result"), bytes):
        return wire.dumps({"seq": reply["seq"]}, "result", reply["result"])
    try:
        return wire.dumps(reply)
    except (TypeError, ValueError):
        error = reply.get("error") or {"class": "TypeError", "message": "the result cannot travel in the protocol"}
        plain = {"class": error["class"], "message": str(error["message"])}
        return wire.dumps({"seq": reply.get("seq"), "error": plain})
