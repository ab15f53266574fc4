"""The harness's end of the driver protocol: a Driver whose operations run in another process (``exec:CMD``).

The process is started and greeted when the driver is built; payloads travel as binary frames when
its answer to the start accepts them, as base64 otherwise. A process that exits, hangs past the
request timeout or writes what is not a protocol line fails the call in progress with a
``ProcessFailure`` (an exception outside the taxonomy, so the engine records it as the driver's
failure) carrying the end of its stderr; the next call starts a fresh process.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from conformance import backends, errors
from conformance.driver import Capabilities, DriverError, Object
from conformance.protocol import wire
from conformance.protocol.process import Channel, ChannelError
from conformance.redact import Redactor

PREFIX = "exec:"
REQUEST_TIMEOUT = 30.0  # seconds one operation may take; the option ``request_timeout`` changes it
START_TIMEOUT = 60.0  # seconds for the handshake: ``go run`` may compile first
#: Options the harness keeps: they configure the client and never reach the driver.
HARNESS_OPTIONS = frozenset({"request_timeout", "service"})


class ProcessFailure(Exception):  # noqa: N818 - the name says what the record shows
    """The driver process exited, hung or broke the protocol during a call; carries the end of its stderr."""


class UntypedError(Exception):  # noqa: N818
    """The driver answered with an error whose class is outside the taxonomy (a raw exception, over the wire)."""


class ExecDriver:
    """A driver in another process speaking the driver protocol on its stdin and stdout."""

    command: ClassVar[str] = ""  # set by exec_driver()
    service: ClassVar[str | None] = None
    name = "exec"

    def __init__(self, **options: Any) -> None:
        self._timeout = _timeout(options.pop("request_timeout", REQUEST_TIMEOUT))
        options.pop("service", None)
        self._options = options
        self._argv = argv(self.command)
        self._redactor = Redactor(environ={})  # what the process may echo back: secret options and pairs
        self._redactor.learn_options(options)
        self._channel: Channel | None = None
        self._frames = False  # payloads as binary frames, once the driver's answer to the start accepts them
        self._seq = 0
        self._caps = Capabilities(operations=frozenset())
        try:
            self._start()
        except ProcessFailure as exc:
            raise DriverError(str(exc)) from None

    def capabilities(self) -> Capabilities:
        return self._caps

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        return self._object(self._call("write", {"path": path}, pairs, data))

    def read(self, path: str, **pairs: Any) -> bytes:
        return wire.data(self._call("read", {"path": path}, pairs), "read's result")

    def stat(self, path: str, **pairs: Any) -> Object:
        return self._object(self._call("stat", {"path": path}, pairs))

    def delete(self, path: str, **pairs: Any) -> None:
        self._nothing(self._call("delete", {"path": path}, pairs))

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        found = self._call("list", {"prefix": prefix}, pairs)
        if not isinstance(found, list):
            raise self._broken(f"list answered {type(found).__name__}, not a list of Objects")
        return iter([self._object(item) for item in found])

    def create_append(self, path: str, **pairs: Any) -> Object:
        return self._object(self._call("create_append", {"path": path}, pairs))

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        answer = self._call("write_append", {"object": _sent(obj)}, pairs, data)
        count = answer.get("written") if isinstance(answer, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            raise self._broken("write_append answers {written: integer, object: Object or null}")
        if answer.get("object") is not None and isinstance(obj, Object):
            moved = self._object(answer["object"])  # what a driver in-process updates on the caller's object
            obj.size, obj.append_offset, obj.etag = moved.size, moved.append_offset, moved.etag
            obj.handle = moved.handle
        return count

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        self._nothing(self._call("commit_append", {"object": _sent(obj)}, pairs))

    def close(self) -> None:
        """Say goodbye and stop the process (killed if it lingers)."""
        channel, self._channel = self._channel, None
        if channel is not None:
            self._seq += 1
            channel.stop(wire.dumps({"seq": self._seq, "op": wire.STOP}))

    # --- the exchange -----------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the process and check its answer to the start; ProcessFailure saying what went wrong."""
        try:
            self._channel = Channel(self._argv)
        except OSError as exc:
            raise DriverError(f"exec:{self.command}: cannot start {self._argv[0]!r}: {exc.strerror or exc}") from None
        self._frames = False  # until the driver's answer accepts them, payloads go as base64
        start = {"version": wire.VERSION, "frames": wire.FRAMES, "options": self._options,
                 "secrets": wire.secrets(self._options)}  # fmt: skip
        try:
            answer = self._exchange(wire.START, start, START_TIMEOUT)
        except UntypedError as exc:
            raise self._broken(f"the driver refused the start: {exc}") from None
        except errors.StorageError as exc:  # refused credentials, say: there is no driver to run
            raise self._broken(f"the driver refused the start: {type(exc).__name__}: {exc}") from None
        if not isinstance(answer, dict):
            raise self._broken("the answer to start must be a JSON object")
        if answer.get("version") != wire.VERSION:
            raise self._broken(
                f"the driver speaks protocol version {answer.get('version')!r}; this harness speaks {wire.VERSION}"
            )
        if answer.get("frames") not in (None, wire.FRAMES):
            said = answer["frames"]
            raise self._broken(f"the driver accepts frames {said!r}; this harness speaks frames {wire.FRAMES}")
        name, service = answer.get("name"), answer.get("service")
        if not isinstance(name, str) or not name or not (service is None or isinstance(service, str)):
            raise self._broken("the answer to start needs a non-empty string name (and service, if any, a string)")
        if self.service is not None and service is not None and service != self.service:
            raise self._broken(f"the driver speaks {service!r}, but the target binds it to a {self.service} backend")
        try:
            caps = wire.capabilities_from(answer.get("capabilities"))
        except wire.WireError as exc:
            raise self._broken(str(exc)) from None
        if self._caps.operations and (name, caps) != (self.name, self._caps):
            raise self._broken("the restarted process declared another name or other capabilities")
        self.name, self._caps = name, caps
        self._frames = answer.get("frames") == wire.FRAMES

    def _call(self, op: str, args: dict[str, Any], pairs: Mapping[str, Any], data: bytes | None = None) -> Any:
        if self._channel is None:  # the last call broke the process: this one starts a fresh one
            self._start()
        secret = wire.secrets(pairs)
        for name in secret:
            self._redactor.add(pairs[name] if isinstance(pairs[name], str | bytes) else str(pairs[name]))
        return self._exchange(op, {**args, "pairs": dict(pairs), "secrets": secret}, self._timeout, data)

    def _exchange(self, op: str, args: dict[str, Any], timeout: float, data: bytes | None = None) -> Any:
        """Send one request and return its result; raise its taxonomy error, UntypedError or ProcessFailure."""
        self._seq += 1
        message = {"seq": self._seq, "op": op, **args}
        if data is None:
            parts: tuple[bytes, ...] = (wire.dumps(message),)
        else:
            framed = self._frames and len(data) <= wire.MAX_FRAME  # a longer payload goes as base64
            parts = wire.framed(message, "data", data) if framed else (wire.dumps(message, "data", data),)
        try:
            reply = wire.loads(self._channel.exchange(parts, timeout))
            size = wire.frame_size(reply.get("result"))
            if size is not None:  # the frame comes first: it is on the stream whatever the line says
                if not self._frames:
                    raise wire.WireError("a frame, but the start agreed on base64 payloads")
                reply["result"] = self._channel.frame(size)
        except ChannelError as exc:
            raise self._broken(f"the process {exc}") from None
        except wire.WireError as exc:
            raise self._broken(f"the process wrote what is not a protocol line: {exc}") from None
        except BaseException:  # a case deadline or Ctrl-C mid-exchange: the stream is out of step now
            self._drop()
            raise
        if reply.get("seq") != self._seq:
            raise self._broken(f"the answer's seq {reply.get('seq')!r} is not the request's {self._seq}")
        if ("result" in reply) == ("error" in reply):
            raise self._broken("an answer carries exactly one of result and error")
        if "result" in reply:
            return reply["result"]
        try:
            error = wire.error_from(reply["error"], self.name)
        except wire.WireError as exc:
            raise self._broken(str(exc)) from None
        if error is not None:
            raise error
        given = reply["error"]
        if given["class"] == wire.PROTOCOL_ERROR:
            raise self._broken(f"the driver refused the request: {given.get('message', '')}")
        raise UntypedError(f"{given['class']}: {given.get('message', '')}")

    def _object(self, item: Any) -> Object:
        try:
            return wire.object_from(item)
        except wire.WireError as exc:
            raise self._broken(str(exc)) from None

    def _nothing(self, item: Any) -> None:
        if item is not None:
            raise self._broken(f"the result must be null, not {type(item).__name__}")

    def _broken(self, what: str) -> ProcessFailure:
        """Stop the process (the next call starts another) and describe what it did, with its stderr."""
        channel = self._channel
        self._drop()
        stderr = self._stderr(channel)
        return ProcessFailure(f"exec:{self.command}: {what}{stderr}")

    def _drop(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.kill()

    def _stderr(self, channel: Channel | None) -> str:
        text = channel.stderr() if channel is not None else ""
        return f"; its stderr ends with: {self._redactor.scrub(text.strip())}" if text.strip() else ""


def exec_driver(command: str, backend: str | None = None, options: Mapping[str, Any] | None = None) -> type[ExecDriver]:
    """The driver class for ``exec:COMMAND`` on a backend (the command split as a POSIX shell would, not run by one).

    Its service is the option ``service``, or else the one service that has a backend of that name
    (a URL: the service with a remote backend; an absolute path: the one with a local backend).
    """
    program = argv(command)[0]  # a command that cannot be split or found is refused now, before any run
    if shutil.which(program) is None:
        where = "no such executable file" if os.sep in program else "not found on PATH"
        raise DriverError(f"exec:{command}: cannot run {program!r}: {where}")
    service = service_of(command, backend, options or {})
    return type("ExecDriver", (ExecDriver,), {"command": command, "service": service, "__module__": __name__})


def service_of(command: str, backend: str | None, options: Mapping[str, Any]) -> str | None:
    """The service an exec driver binds to; None without a backend; DriverError if the name fits none or several."""
    if options.get("service"):
        return str(options["service"])
    if backend is None:
        return None
    name = backend
    if backend.startswith(("http://", "https://")):
        name = backends.REMOTE
    elif backend.startswith("/"):
        name = backends.LOCAL
    services = sorted({key.partition(".")[0] for key in backends.known() if key.partition(".")[2] == name})
    if len(services) == 1:
        return services[0]
    if not services:
        raise DriverError(f"exec:{command}: no service has a backend {backend!r} "
                          f"(known: {', '.join(backends.known()) or 'none'})")  # fmt: skip
    raise DriverError(f"exec:{command}: backend {backend!r} belongs to {', '.join(services)}: "
                      "say which with --option service=NAME")  # fmt: skip


def argv(command: str) -> list[str]:
    """The command's arguments; DriverError if it is empty or unbalanced."""
    try:
        found = shlex.split(command)
    except ValueError as exc:
        raise DriverError(f"exec:{command}: cannot split the command: {exc}") from None
    if not found:
        raise DriverError("exec: needs a command, e.g. exec:'go run ./examples/go'")
    return found


def _sent(obj: Any) -> Any:
    return wire.object_json(obj) if isinstance(obj, Object) else obj


def _timeout(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DriverError(f"option request_timeout must be a number of seconds, not {value!r}") from None
    if seconds <= 0:
        raise DriverError("option request_timeout must be more than 0 seconds")
    return seconds
