"""The driver's end of the protocol for Python drivers: ``serve(driver)`` answers requests on stdin and stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

from conformance.driver import OPERATIONS, DriverError, Object, check_driver
from conformance.protocol import wire

CHUNK = 1 << 20
LIST_LIMIT = 10_000  # the harness reads no more of a listing; a runaway iterator must not hang the answer
REFUSED = 2  # exit status after refusing a start, or a frame (the stream is out of step after it)
NEWLINE = ord("\n")


def serve(driver: Any, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None, frames: bool = True) -> int:
    """Answer requests until stop or end of input; ``driver`` is an instance, or a class built with the start's options.

    Without streams it serves on this process's stdin and stdout, and points stdout (the file
    descriptor too) at stderr first, so a stray print cannot corrupt the protocol. With ``frames``
    false it declines binary frames, as a driver written before them does. Returns the exit status.
    """
    if stdout is None:
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    session = _Session(driver, frames)
    source = _Input(stdin or sys.stdin.buffer.raw)
    while (line := source.line()) is not None:
        if not line.strip():
            continue
        reply = session.answer(line, source)
        if reply is not None:
            for part in _parts(reply, session.frames):
                stdout.write(part)
            stdout.flush()
        if session.status is not None:
            return session.status
    return 0


class _Input:
    """A stream read a megabyte at a time (a base64 payload's line is megabytes long): its lines and frames."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._read = getattr(stream, "read1", stream.read)
        self._buffer = bytearray()

    def line(self) -> bytes | None:
        """The next line without its newline (the last may lack one); None at the end of the input."""
        scanned = 0
        while (end := self._buffer.find(b"\n", scanned)) < 0:
            scanned = len(self._buffer)
            if not self._more():
                line, self._buffer = bytes(self._buffer), bytearray()
                return line or None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    def frame(self, size: int) -> bytes:
        """The ``size`` bytes after a line, and the newline that ends them; WireError if either is missing."""
        parts = [bytes(self._buffer[: size + 1])]
        del self._buffer[: size + 1]
        have = len(parts[0])
        while have <= size:
            parts.append(self._read(min(CHUNK, size + 1 - have)))
            if not parts[-1]:
                raise wire.WireError(f"the input ended {have} bytes into a {size}-byte frame")
            have += len(parts[-1])
        last = parts.pop()
        if last[-1] != NEWLINE:
            what = f"byte 0x{last[-1]:02x}"
            raise wire.WireError(f"a {size}-byte frame is followed by {what}, not the newline that ends it")
        parts.append(last[:-1])
        return b"".join(parts)

    def _more(self) -> bool:
        chunk = self._read(CHUNK)
        self._buffer += chunk
        return bool(chunk)


class _Session:
    """One process's conversation: the start, then operations on the driver it built."""

    def __init__(self, driver: Any, frames: bool) -> None:
        self.factory = driver
        self.driver: Any = None
        self.accepts_frames = frames
        self.frames = False  # payloads as binary frames: once this end's answer to the start accepted them
        self.status: int | None = None  # set when the conversation is over

    def answer(self, line: bytes, source: _Input) -> dict[str, Any] | None:
        try:
            request = wire.loads(line)
        except wire.WireError as exc:
            return _refusal(None, f"malformed request: {exc}")
        seq, op = request.get("seq"), request.get("op")
        try:  # the frame first: it is on the stream whatever the request is
            size = wire.frame_size(request.get("data"))
            if size is not None:
                if not self.frames:
                    raise wire.WireError("a frame, but the start agreed on base64 payloads")
                request["data"] = source.frame(size)
        except wire.WireError as exc:  # the stream is out of step: nothing after this can be read
            self.status = REFUSED
            return _refusal(seq, f"malformed frame: {exc}")
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
        if self.accepts_frames and request.get("frames") == wire.FRAMES:
            result["frames"] = wire.FRAMES
            self.frames = True
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
            return bytes(_typed(op, result, bytes | bytearray))  # a frame, or spliced into the line as base64
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


def _parts(reply: dict[str, Any], frames: bool) -> tuple[bytes, ...]:
    """The reply as a line (a read's bytes as a frame after it); an error whose attributes cannot travel goes bare."""
    if isinstance(reply.get("result"), bytes):
        if frames and len(reply["result"]) <= wire.MAX_FRAME:  # a longer payload goes as base64
            return wire.framed({"seq": reply["seq"]}, "result", reply["result"])
        return (wire.dumps({"seq": reply["seq"]}, "result", reply["result"]),)
    try:
        return (wire.dumps(reply),)
    except (TypeError, ValueError):
        error = reply.get("error") or {"class": "TypeError", "message": "the result cannot travel in the protocol"}
        plain = {"class": error["class"], "message": str(error["message"])}
        return (wire.dumps({"seq": reply.get("seq"), "error": plain}),)
