"""The fault proxy after the backend closed a kept connection: reconnect, and resend only when it is safe."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.backends import ministack
from conformance.backends.faultproxy import FaultProxy
from conformance.backends.processes import ServerProcess, child_env

IDLE_TIMEOUT = 0.5  # the local backend closes a connection idle this long, as ministack does after 5 s


class _Backend(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP server that closes idle connections; ``drop`` makes it hang up on chosen requests."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    store: dict[str, bytes] = {}
    seen: list[tuple[str, str]] = []  # (method, path) of every request read, answered or not
    drop: dict[str, str] = {}  # path -> "once" (hang up on its next request on a kept connection) or "always"/"partial"
    served = threading.local()

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.served.count = 0

    def _hang_up(self) -> bool:
        self.served.count += 1
        rule = self.drop.get(self.path)
        if rule == "partial":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        elif rule == "once" and self.served.count > 1:
            del self.drop[self.path]
        elif rule != "always":
            return False
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        return True

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path))
        if not self._hang_up():
            self._reply(self.store.get(self.path, b"none"))

    def do_PUT(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.command, self.path))
        if not self._hang_up():
            self.store[self.path] = data
            self._reply(b"stored %d" % len(data))

    def do_POST(self) -> None:
        self.do_PUT()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    _Backend.store.clear()
    _Backend.seen.clear()
    _Backend.drop.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    with FaultProxy("127.0.0.1", server.server_address[1], timeout=5) as proxy:
        yield proxy
    server.shutdown()
    server.server_close()


def _ask(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn.request(method, path, body=body)
    reply = conn.getresponse()
    return reply.status, reply.read()


def test_a_request_after_the_backends_idle_timeout_reaches_it(proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    assert _ask(conn, "PUT", "/a", b"first") == (200, b"stored 5")
    time.sleep(IDLE_TIMEOUT * 3)  # the backend has closed the proxy's kept connection by now
    assert _ask(conn, "PUT", "/b", b"after idle") == (200, b"stored 10")
    time.sleep(IDLE_TIMEOUT * 3)
    assert _ask(conn, "GET", "/b") == (200, b"after idle")
    conn.close()
    assert _Backend.seen == [("PUT", "/a"), ("PUT", "/b"), ("GET", "/b")]  # each reached it once


def test_a_request_the_kept_connection_lost_unanswered_is_sent_again(proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    assert _ask(conn, "GET", "/warm") == (200, b"none")
    _Backend.drop["/x"] = "once"  # read, then hang up: the backend closing just as the request went out
    assert _ask(conn, "PUT", "/x", b"replayed body") == (200, b"stored 13")
    assert _ask(conn, "GET", "/x") == (200, b"replayed body")
    conn.close()
    assert _Backend.seen == [("GET", "/warm"), ("PUT", "/x"), ("PUT", "/x"), ("GET", "/x")]


@pytest.mark.parametrize(
    ("warm", "rule", "body", "method"),
    [
        (False, "always", b"x", "PUT"),  # a new connection that dies is the backend's answer, not a stale socket
        (True, "partial", b"x", "PUT"),  # part of an answer came: the backend acted on the request
        (True, "once", b"z" * (2 << 20), "PUT"),  # too large to keep for a second sending
        (True, "once", b"x", "POST"),  # not idempotent: the backend may have acted on it before hanging up
    ],
    ids=["fresh-connection", "answer-begun", "large-body", "post"],
)
def test_no_second_sending_when_it_is_not_safe(
    proxy: FaultProxy, warm: bool, rule: str, body: bytes, method: str
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    if warm:
        assert _ask(conn, "GET", "/warm") == (200, b"none")
    _Backend.drop["/x"] = rule
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        _ask(conn, method, "/x", body)
    conn.close()
    assert _Backend.seen.count((method, "/x")) == 1


def test_real_backend_after_ten_idle_seconds(tmp_path: Path) -> None:
    """ministack (hypercorn) closes a kept connection after 5 idle seconds; the next write and read still pass."""
    try:
        argv, env = ministack.command(str(tmp_path), child_env())
    except ministack.MinistackUnavailable as exc:
        pytest.skip(f"s3@ministack: {exc}")
    server = ServerProcess("ministack", argv, env, "/_ministack/health")
    try:
        with FaultProxy("127.0.0.1", server.port) as proxy:  # its own idle limit for clients is 30 s
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            assert _ask(conn, "PUT", "/gspc-idle")[0] == 200  # ministack takes unsigned requests
            assert _ask(conn, "PUT", "/gspc-idle/before", b"one")[0] == 200
            time.sleep(10.5)
            assert _ask(conn, "PUT", "/gspc-idle/after", b"two")[0] == 200
            time.sleep(10.5)
            assert _ask(conn, "GET", "/gspc-idle/after") == (200, b"two")
            conn.close()
            assert proxy.requests == 4
    finally:
        server.close()
