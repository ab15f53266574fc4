"""A fault proxy on 127.0.0.1 in front of an HTTP backend: pass-through until told to break.

The proxy understands just enough HTTP/1.1 (request and response framing) to decide per request,
so a client's pooled keep-alive connection can never slip past an injected fault.
Breaking faults, one at a time: ``reset`` (TCP reset after the request head), ``stall`` (read the
request, answer nothing), ``status`` (a complete HTTP error response, then close).
Shaping faults, alongside: ``latency`` (a delay before each request) and ``bandwidth`` (bodies in
both directions at most so many bytes a second); a run can also shape every request
(``apply_run_faults``), which ``clear()`` leaves in place.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

KINDS = ("reset", "stall", "status", "latency", "bandwidth")
SHAPING = ("latency", "bandwidth")  # they slow requests down rather than break them, so they combine
#: Faults that break the connection a request came on. A client may resend a request whose reused
#: connection broke before any answer (Go's net/http does, for idempotent ones) and so never see the
#: fault: idle pooled connections are dropped when one is injected, so the next request opens a new
#: one. A status fault is a complete answer, seen on any connection: dropping for it would only race
#: a client that reuses the connection at the moment it is dropped (a spurious connection error).
CONNECTION_FAULTS = ("reset", "stall")
_REPLAY_LIMIT = 1 << 20  # request bytes kept to resend when a reused upstream connection dies unanswered
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})  # the methods HTTP lets one resend
_HEAD_LIMIT = 64 * 1024  # a request or response head larger than this is refused
_POLL = 0.2  # seconds between checks of the stop flag in every wait
_SETTLE = 0.5  # seconds inject() waits at most for connections still finishing an exchange


class ProxyError(Exception):
    """A peer broke HTTP framing or went away; the connection is dropped."""


@dataclass
class Fault:
    """One injected fault and how many more requests it applies to (None: until cleared)."""

    kind: str
    times: int | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 5.0
    bytes_per_second: float = 0.0

    def spend(self) -> bool:
        """Count one request against ``times``; True when this was the last."""
        if self.times is None:
            return False
        self.times -= 1
        return self.times <= 0


def error_body(code: str, message: str, fmt: str = "xml") -> tuple[bytes, str]:
    """An error document in the backend's style (S3 XML or JSON) and its content type."""
    if fmt == "json":
        return json.dumps({"error": {"code": code, "message": message}}).encode(), "application/json"
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
    text += f"<Message>{escape(message)}</Message><RequestId>gspc-fault</RequestId></Error>"
    return text.encode(), "application/xml"


class _Stream:
    """A buffered reader over a socket whose every wait is bounded."""

    def __init__(self, sock: socket.socket, stop: threading.Event, timeout: float) -> None:
        self.sock, self.stop, self.timeout = sock, stop, timeout
        self.buf = b""

    def _fill(self, wait: float | None = None) -> bool:
        """Read more bytes; False at end of stream."""
        left = self.timeout if wait is None else wait
        while left > 0:
            if self.stop.is_set():
                raise ProxyError("proxy stopping")
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if pending or select.select([self.sock], [], [], min(_POLL, left))[0]:
                try:
                    data = self.sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    return False
                self.buf += data
                return bool(data)
            left -= _POLL
        raise ProxyError("peer timed out")

    def head(self, wait: float | None = None) -> bytes | None:
        """The next message head up to the blank line, or None at a clean end of stream."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _HEAD_LIMIT:
                raise ProxyError("message head too large")
            if not self._fill(wait):
                if self.buf:
                    raise ProxyError("stream ended inside a message head")
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def _take(self, size: int) -> bytes:
        while not self.buf:
            if not self._fill():
                raise ProxyError("stream ended inside a body")
        chunk, self.buf = self.buf[:size], self.buf[size:]
        return chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > _HEAD_LIMIT or not self._fill():
                raise ProxyError("bad chunked framing")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def body(self, framing: str | int, sink: Callable[[bytes], None] | None) -> None:
        """Copy (or, without a sink, discard) one body framed as a length, 'chunked' or 'eof'."""
        if framing == "chunked":
            while True:
                line = self._line()
                _send(sink, line)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := self._line()) != b"\r\n":
                        _send(sink, trailer)
                    _send(sink, b"\r\n")
                    return
                self._copy(size + 2, sink)
        elif framing == "eof":
            while True:
                _send(sink, self.buf)
                self.buf = b""
                if not self._fill():
                    return
        else:
            self._copy(int(framing), sink)

    def _copy(self, size: int, sink: Callable[[bytes], None] | None) -> None:
        while size > 0:
            chunk = self._take(min(size, 1 << 20))
            _send(sink, chunk)
            size -= len(chunk)


def _send(sink: Callable[[bytes], None] | None, data: bytes) -> None:
    if sink is not None and data:
        sink(data)


class _Pacer:
    """Sends bytes no faster than ``rate`` a second (None: at once), in slices so the flow stays even."""

    def __init__(self, rate: float | None, stop: threading.Event) -> None:
        self.rate, self.stop = rate, stop
        self.due = 0.0  # when the bytes sent so far are paid for

    def send(self, sock: socket.socket, data: bytes) -> None:
        if not self.rate:
            sock.sendall(data)
            return
        step = max(1024, int(self.rate / 20))
        self.due = max(self.due, time.monotonic())  # time spent waiting for the peer earns no burst
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            sock.sendall(piece)
            self.due += len(piece) / self.rate
            wait = self.due - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                raise ProxyError("proxy stopping")


class _Upstream:
    """The backend connection behind one client connection, reopened when the backend has closed it."""

    def __init__(self, connect: Callable[[], socket.socket], stop: threading.Event, timeout: float) -> None:
        self._connect, self._stop, self._timeout = connect, stop, timeout
        self.sock: socket.socket | None = None
        self.stream: _Stream | None = None
        self.used = False  # the current connection has carried a request already

    def open(self) -> bool:
        """Make the connection fit for the next request; True if it is a kept one (it may die unanswered)."""
        if self.sock is not None and self._stale():
            self.close()
        if self.sock is None:
            self.sock = self._connect()
            self.stream = _Stream(self.sock, self._stop, self._timeout)
            self.used = False
        reused, self.used = self.used, True
        return reused

    def _stale(self) -> bool:
        # An idle HTTP/1.1 connection the backend can read from has ended (FIN, reset, a parting 408):
        # a request written to it would be lost, typically after the backend's keep-alive timeout.
        if (self.stream and self.stream.buf) or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return True
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None


def _parse(head: bytes) -> tuple[str, dict[str, str]]:
    """The start line and the headers (lower-cased names) of a message head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _framing(headers: dict[str, str], default: str | int) -> str | int:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return "chunked"
    if "content-length" in headers:
        return int(headers["content-length"])
    return default


def _wants_close(headers: dict[str, str]) -> bool:
    return "close" in headers.get("connection", "").lower()


def _strip_header(head: bytes, name: str) -> bytes:
    """The head without every header called ``name`` (case-insensitive)."""
    lines = head.split(b"\r\n")
    key = name.lower().encode() + b":"
    return b"\r\n".join(line for line in lines if not line.lower().startswith(key))


def _shutdown(sock: socket.socket) -> None:
    """Wake a reader blocked on ``sock`` from another thread (bypassing TLS close_notify)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Conn:
    """One client connection: its socket, whether it waits between requests, the faults it has seen."""

    def __init__(self, raw: socket.socket, generation: int) -> None:
        self.raw = raw
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # told when the connection goes idle or ends
        self.idle = False
        self.dropped = False
        self.generation = generation  # the proxy's inject count when this connection last checked
        self.reader: _Stream | None = None

    def settle(self, until: float) -> None:
        """Wait, until the monotonic time ``until`` at most, for an exchange in progress to end."""
        with self.changed:
            self.changed.wait_for(lambda: self.idle or self.dropped, max(0.0, until - time.monotonic()))

    def drop_if_idle(self, generation: int) -> bool:
        """Close the connection (True) if it waits between requests and a fault came since it last looked."""
        with self.lock:
            if not self.idle or self.dropped or self.generation == generation:
                return self.dropped
            self.generation = generation
            try:
                pending = bool(self.reader and self.reader.buf) or bool(select.select([self.raw], [], [], 0)[0])
            except (OSError, ValueError):
                return self.dropped
            if pending:
                return False  # a request is on its way: it will meet the fault itself
            self.dropped = True
            _shutdown(self.raw)
            return True


class FaultProxy:
    """HTTP proxy on 127.0.0.1 (ephemeral port) that injects resets, stalls, error answers, latency, bandwidth."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        upstream_ssl: ssl.SSLContext | None = None,
        error_format: str = "xml",
        error_document: Callable[[int, float | None], tuple[bytes, str]] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not _is_loopback(upstream_host):
            raise ValueError(f"fault proxy upstream must be on this machine, not {upstream_host!r}")
        self.upstream = (upstream_host, int(upstream_port))
        self.ssl_context, self.upstream_ssl = ssl_context, upstream_ssl
        self.error_format, self.timeout = error_format, timeout
        self.error_document = error_document  # (status, retry_after) -> (body, content type) in a service's dialect
        #: Requests seen and faults applied, for tests that prove what reached the wire.
        self.requests = 0
        self.faults_applied = 0
        #: Shaping of every request for the whole run (apply_run_faults); clear() keeps it.
        self.run_latency = 0.0
        self.run_bandwidth: float | None = None
        self._fault: Fault | None = None
        self._shaping: dict[str, Fault] = {}
        self._generation = 0  # counts the injected CONNECTION_FAULTS
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._release = threading.Event()  # ends every stall in progress
        self._conns: set[_Conn] = set()
        self._threads: set[threading.Thread] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name=f"fault-proxy-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        """The proxy's base URL, for a client's endpoint."""
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def inject(
        self,
        kind: str,
        *,
        times: int | None = None,
        status: int = 500,
        code: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        retry_after: int | float | None = None,
        seconds: float | None = None,
        bytes_per_second: float | None = None,
    ) -> None:
        """Apply a fault to the next ``times`` requests (None: until clear()), replacing any other of its group.

        Breaking faults (reset, stall, status) replace one another; latency and bandwidth each
        replace only their own kind and apply on top. ``seconds`` is a stall's length (default 5)
        or the latency; ``bytes_per_second`` the bandwidth.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        if kind == "latency" and (seconds is None or seconds < 0):
            raise ValueError("a latency fault needs seconds >= 0")
        if kind == "bandwidth" and not (bytes_per_second and bytes_per_second > 0):
            raise ValueError("a bandwidth fault needs bytes_per_second > 0")
        extra = dict(headers or {})
        if isinstance(body, str):
            body = body.encode()
        if kind == "status":
            if body is None and self.error_document is not None:
                body, content_type = self.error_document(int(status), retry_after)
                extra.setdefault("Content-Type", content_type)
            elif body is None:
                phrase = message or _phrase(status)
                body, content_type = error_body(code or _phrase(status).replace(" ", ""), phrase, self.error_format)
                extra.setdefault("Content-Type", content_type)
            if retry_after is not None:
                extra.setdefault("Retry-After", f"{retry_after:g}")
        length = 5.0 if seconds is None else float(seconds)
        fault = Fault(kind, times, int(status), extra, body or b"", length, float(bytes_per_second or 0))
        if kind in SHAPING:  # a slower network leaves pooled connections as usable as before
            with self._lock:
                self._shaping[kind] = fault
            return
        with self._lock:
            self._fault = fault
            self._release.clear()
            if kind not in CONNECTION_FAULTS:
                return  # a complete answer reaches the client on any connection: the pooled ones stay
            self._generation += 1
            conns, generation = list(self._conns), self._generation
        # A pooled connection must not carry the next request past the fault. One still finishing its
        # last exchange (its answer sent, the client free to reuse it) is waited for, and dropped here,
        # before the caller's next request: dropped later, it could close under that request.
        until = time.monotonic() + _SETTLE
        for conn in conns:
            conn.settle(until)
            conn.drop_if_idle(generation)

    def clear(self) -> None:
        """Stop injecting (the run's own shaping stays); stalled connections are let go."""
        with self._lock:
            self._fault = None
            self._shaping.clear()
        self._release.set()

    def close(self) -> None:
        """Stop listening, drop every connection and wait (bounded) for the threads."""
        self._stop.set()
        self._release.set()
        _shutdown(self._listener)  # wakes the acceptor now, rather than at its next poll
        self._listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            _shutdown(conn.raw)
        for thread in [self._acceptor, *threads]:
            thread.join(timeout=2)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _take(self) -> tuple[Fault | None, float, float | None]:
        """The breaking fault for the next request, its delay and its body rate (bytes a second, None: any)."""
        with self._lock:
            self.requests += 1
            delay, rate = self.run_latency, self.run_bandwidth
            for kind, shaping in list(self._shaping.items()):
                if kind == "latency":
                    delay += shaping.seconds
                else:
                    rate = min(rate or shaping.bytes_per_second, shaping.bytes_per_second)
                if shaping.spend():
                    del self._shaping[kind]
                self.faults_applied += 1
            fault = self._fault
            if fault is not None:
                if fault.spend():
                    self._fault = None
                self.faults_applied += 1
            return fault, delay, rate

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(raw, self._generation)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._threads.add(thread)
            thread.start()

    def _serve(self, conn: _Conn) -> None:
        client: socket.socket = conn.raw
        upstream = _Upstream(self._connect, self._stop, self.timeout)
        try:
            client.settimeout(self.timeout)
            if self.ssl_context is not None:
                client = self.ssl_context.wrap_socket(client, server_side=True)
                with conn.lock:
                    conn.raw = client  # wrapping detached the plain socket
            reader = conn.reader = _Stream(client, self._stop, self.timeout)
            while True:
                with conn.lock:
                    conn.idle = True
                    conn.changed.notify_all()
                # Between requests: a fault injected while this one was busy still drops it.
                if conn.drop_if_idle(self._generation):
                    return
                head = reader.head(wait=self.timeout)
                with conn.lock:
                    conn.idle = False
                    if conn.dropped or head is None:
                        return
                start, headers = _parse(head)
                method = start.split(" ", 1)[0].upper()
                fault, delay, rate = self._take()
                if delay > 0 and self._stop.wait(delay):
                    return
                if fault is not None:
                    self._apply(fault, conn, client, reader, method, headers)
                    return
                if not self._forward(client, reader, upstream, head, method, headers, rate):
                    return
        except (OSError, ProxyError, ValueError):
            return
        finally:
            upstream.close()
            with contextlib.suppress(OSError):
                client.close()
            with conn.lock:
                conn.dropped = True
                conn.changed.notify_all()
            with self._lock:
                self._conns.discard(conn)
                self._threads.discard(threading.current_thread())

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.upstream, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.upstream_ssl is not None:
            sock = self.upstream_ssl.wrap_socket(sock, server_hostname=self.upstream[0])
        return sock

    def _forward(
        self,
        client: socket.socket,
        reader: _Stream,
        upstream: _Upstream,
        head: bytes,
        method: str,
        headers: dict[str, str],
        rate: float | None,
    ) -> bool:
        """Relay one request and its response; False when the connection must close after it."""
        if "100-continue" in headers.get("expect", "").lower():
            # Answer the client's Expect ourselves so the upstream sees an ordinary request.
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            head = _strip_header(head, "expect")
        reused = upstream.open()
        kept: list[bytes] | None = [head]  # the request as sent, while small enough to send again
        size, broken = len(head), False
        pacer = _Pacer(rate, self._stop)

        def to_upstream(data: bytes) -> None:
            nonlocal kept, size, broken
            size += len(data)
            if kept is not None and size <= _REPLAY_LIMIT:
                kept.append(data)
            else:
                kept = None
            if not broken:
                try:
                    pacer.send(upstream.sock, data)
                except OSError:
                    broken = True  # keep reading the client's body: the request may be sent again

        try:
            upstream.sock.sendall(head)
        except OSError:
            broken = True
        reader.body(_framing(headers, 0), to_upstream)
        reply = None if broken else upstream.stream.head()
        if reply is None and reused and kept is not None and method in _IDEMPOTENT:
            # The backend closed its kept connection as the request went out; none of it was answered
            # (so nothing reached the client): the same request on a new connection is the one the client sent.
            # A POST is not sent twice: a backend that read it and hung up may have acted on it.
            upstream.close()
            upstream.open()
            upstream.sock.sendall(b"".join(kept))
            reply = upstream.stream.head()
        while True:
            if reply is None:
                raise ProxyError("upstream closed without answering")
            status_line, reply_headers = _parse(reply)
            status = int(status_line.split(" ")[1])
            if not 100 <= status < 200:
                break
            reply = upstream.stream.head()  # the upstream's own interim answers are already handled above
        client.sendall(reply)
        if method == "HEAD" or status in (204, 304):
            framing: str | int = 0
        else:
            framing = _framing(reply_headers, "eof")
        down = _Pacer(rate, self._stop)
        upstream.stream.body(framing, lambda data: down.send(client, data))
        return framing != "eof" and not _wants_close(headers) and not _wants_close(reply_headers)

    def _apply(
        self,
        fault: Fault,
        conn: _Conn,
        client: socket.socket,
        reader: _Stream,
        method: str,
        headers: dict[str, str],
    ) -> None:
        if fault.kind == "reset":
            _abort(conn.raw)
            return
        if fault.kind == "stall":
            waited = 0.0
            while waited < fault.seconds and not self._release.is_set():
                self._release.wait(min(_POLL, fault.seconds - waited))
                waited += _POLL
            return
        if "100-continue" not in headers.get("expect", "").lower():
            # Take the whole body first: closing with unread bytes would reset, hiding the answer.
            reader.body(_framing(headers, 0), None)
        extra = {k: v for k, v in fault.headers.items() if k.lower() not in ("content-length", "connection")}
        lines = [f"HTTP/1.1 {fault.status} {_phrase(fault.status)}"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        lines += [f"Content-Length: {len(fault.body)}", "Connection: close", "", ""]
        client.sendall("\r\n".join(lines).encode("latin-1") + (b"" if method == "HEAD" else fault.body))
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)


def apply_run_faults(proxy: FaultProxy, latency: float | None = None, bandwidth: float | None = None) -> None:
    """Shape every request through ``proxy`` for the run: ``latency`` seconds first, bodies at ``bandwidth`` B/s."""
    if latency is not None and latency < 0:
        raise ValueError("the run's latency must be at least 0 seconds")
    if bandwidth is not None and bandwidth <= 0:
        raise ValueError("the run's bandwidth must be more than 0 bytes a second")
    proxy.run_latency, proxy.run_bandwidth = latency or 0.0, bandwidth


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
