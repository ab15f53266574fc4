"""A fault proxy on 127.0.0.1 in front of an HTTP backend: pass-through until told to break.

The proxy understands just enough HTTP/1.1 (request and response framing) to decide per request,
so a client's pooled keep-alive connection can never slip past an injected fault.
Faults: ``reset`` (TCP reset after the request head), ``stall`` (read the request, answer
nothing), ``status`` (a complete HTTP error response, then close).
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
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

KINDS = ("reset", "stall", "status")
_HEAD_LIMIT = 64 * 1024  # a request or response head larger than this is refused
_POLL = 0.2  # seconds between checks of the stop flag in every wait


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

    def body(self, framing: str | int, sink: socket.socket | None) -> None:
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

    def _copy(self, size: int, sink: socket.socket | None) -> None:
        while size > 0:
            chunk = self._take(min(size, 1 << 20))
            _send(sink, chunk)
            size -= len(chunk)


def _send(sock: socket.socket | None, data: bytes) -> None:
    if sock is not None and data:
        sock.sendall(data)


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
        self.idle = False
        self.dropped = False
        self.generation = generation  # the proxy's inject count when this connection last checked
        self.reader: _Stream | None = None

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
    """HTTP proxy on 127.0.0.1 (ephemeral port) that injects resets, stalls and error answers."""

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
        self._fault: Fault | None = None
        self._generation = 0  # counts inject() calls
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
        seconds: float = 5.0,
    ) -> None:
        """Apply a fault to the next ``times`` requests (None: until clear()), replacing any other."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
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
        fault = Fault(kind, times, int(status), extra, body or b"", float(seconds))
        with self._lock:
            self._fault = fault
            self._generation += 1
            self._release.clear()
            conns, generation = list(self._conns), self._generation
        for conn in conns:  # a pooled idle connection must not carry the next request past the fault
            conn.drop_if_idle(generation)

    def clear(self) -> None:
        """Stop injecting; stalled connections are let go."""
        with self._lock:
            self._fault = None
        self._release.set()

    def close(self) -> None:
        """Stop listening, drop every connection and wait (bounded) for the threads."""
        self._stop.set()
        self._release.set()
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

    def _take(self) -> Fault | None:
        with self._lock:
            self.requests += 1
            fault = self._fault
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._fault = None
            self.faults_applied += 1
            return fault

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
        upstream: socket.socket | None = None
        try:
            client.settimeout(self.timeout)
            if self.ssl_context is not None:
                client = self.ssl_context.wrap_socket(client, server_side=True)
                with conn.lock:
                    conn.raw = client  # wrapping detached the plain socket
            reader = conn.reader = _Stream(client, self._stop, self.timeout)
            upstream_reader: _Stream | None = None
            while True:
                with conn.lock:
                    conn.idle = True
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
                fault = self._take()
                if fault is not None:
                    self._apply(fault, conn, client, reader, method, headers)
                    return
                if upstream is None:
                    upstream = self._connect()
                    upstream_reader = _Stream(upstream, self._stop, self.timeout)
                if not self._forward(client, reader, upstream, upstream_reader, head, method, headers):
                    return
        except (OSError, ProxyError, ValueError):
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
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
        upstream: socket.socket,
        upstream_reader: _Stream,
        head: bytes,
        method: str,
        headers: dict[str, str],
    ) -> bool:
        """Relay one request and its response; False when the connection must close after it."""
        if "100-continue" in headers.get("expect", "").lower():
            # Answer the client's Expect ourselves so the upstream sees an ordinary request.
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            head = _strip_header(head, "expect")
        upstream.sendall(head)
        reader.body(_framing(headers, 0), upstream)
        while True:
            reply = upstream_reader.head()
            if reply is None:
                raise ProxyError("upstream closed without answering")
            status_line, reply_headers = _parse(reply)
            status = int(status_line.split(" ")[1])
            if 100 <= status < 200:
                continue  # the upstream's own interim answers are already handled above
            break
        client.sendall(reply)
        if method == "HEAD" or status in (204, 304):
            framing: str | int = 0
        else:
            framing = _framing(reply_headers, "eof")
        upstream_reader.body(framing, client)
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
