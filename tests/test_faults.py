"""The fault proxy on its own: pass-through, each fault kind, latency and bandwidth, counting, idle drops, TLS."""

from __future__ import annotations

import http.client
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import gspc

from conformance.backends.faultproxy import FaultProxy, apply_run_faults, error_body
from conformance.cli import _parser


class _Upstream(http.server.BaseHTTPRequestHandler):
    """A tiny keep-alive HTTP server: GET echoes the path, PUT stores, /chunked streams chunks."""

    protocol_version = "HTTP/1.1"
    store: dict[str, bytes] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = self.store.get(self.path, f"path={self.path}".encode())
        self._reply(200, body, {"X-Upstream": "yes"})

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while (size := int(self.rfile.readline().strip(), 16)) > 0:
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.store[self.path] = data
        self._reply(200, b"stored %d" % len(data))


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: int) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", upstream, timeout=5) as proxy:
        yield proxy


def _conn(proxy: FaultProxy, timeout: float = 5) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def _get(proxy: FaultProxy, path: str = "/x", method: str = "GET") -> http.client.HTTPResponse:
    conn = _conn(proxy)
    conn.request(method, path)
    reply = conn.getresponse()
    reply.body = reply.read()  # type: ignore[attr-defined]
    conn.close()
    return reply


def test_pass_through_keeps_one_connection_for_many_requests(proxy: FaultProxy) -> None:
    conn = _conn(proxy)
    for index in range(3):
        conn.request("GET", f"/item/{index}")
        reply = conn.getresponse()
        assert (reply.status, reply.read(), reply.getheader("X-Upstream")) == (
            200,
            f"path=/item/{index}".encode(),
            "yes",
        )
    conn.request("HEAD", "/item/0")
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b""
    conn.close()
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    assert (proxy.requests, proxy.faults_applied) == (4, 0)


def test_pass_through_bodies_by_length_chunked_and_expect(proxy: FaultProxy) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB, larger than any one socket read
    conn = _conn(proxy)
    conn.request("PUT", "/big", body=big)
    assert conn.getresponse().read() == b"stored %d" % len(big)
    conn.request("PUT", "/chunks", body=iter([b"ab", b"cde"]), encode_chunked=True)
    assert conn.getresponse().read() == b"stored 5"
    conn.request("GET", "/chunked")
    assert conn.getresponse().read() == b"hello chunked world"
    conn.close()
    assert _get(proxy, "/big").body == big
    # A client that waits for 100 Continue gets it from the proxy, then the upstream's answer.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(b"PUT /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        raw.sendall(b"xyz")
        assert b"stored 3" in _read_until_close(raw, b"stored 3")


def _read_until_close(sock: socket.socket, marker: bytes = b"") -> bytes:
    data = b""
    while marker not in data or not marker:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_status_fault_answers_a_complete_response_then_passes(proxy: FaultProxy) -> None:
    proxy.inject("status", status=503, code="SlowDown", message="Please reduce your request rate.", times=1)
    reply = _get(proxy)
    assert reply.status == 503
    assert reply.getheader("Content-Type") == "application/xml"
    assert reply.getheader("Connection") == "close"
    assert b"<Code>SlowDown</Code>" in reply.body and b"Please reduce your request rate." in reply.body
    assert _get(proxy).status == 200  # times=1 is spent
    assert (proxy.requests, proxy.faults_applied) == (2, 1)


def test_status_fault_headers_retry_after_head_and_custom_body(proxy: FaultProxy) -> None:
    proxy.inject("status", status=429, retry_after=2, headers={"X-Fault": "1"}, body="slow down")
    reply = _get(proxy)
    assert (reply.status, reply.getheader("Retry-After"), reply.getheader("X-Fault"), reply.body) == (
        429,
        "2",
        "1",
        b"slow down",
    )
    head = _get(proxy, method="HEAD")
    assert head.status == 429 and head.body == b""  # a HEAD answer never has a body
    assert _get(proxy).status == 429  # no times: until cleared
    proxy.clear()
    assert _get(proxy).status == 200


def test_status_fault_reads_the_request_body_so_the_answer_is_not_lost(proxy: FaultProxy) -> None:
    proxy.inject("status", status=500, code="InternalError")
    conn = _conn(proxy)
    conn.request("PUT", "/big-fail", body=b"z" * (4 << 20))
    reply = conn.getresponse()
    assert reply.status == 500 and b"<Code>InternalError</Code>" in reply.read()
    proxy.clear()
    assert _get(proxy, "/big-fail").body == b"path=/big-fail"  # never reached the upstream


def test_json_error_format(upstream: int) -> None:
    with FaultProxy("127.0.0.1", upstream, error_format="json") as proxy:
        proxy.inject("status", status=500, code="internal")
        reply = _get(proxy)
    assert reply.getheader("Content-Type") == "application/json"
    assert reply.body == error_body("internal", "Internal Server Error", "json")[0]


def test_reset_fault_resets_the_connection(proxy: FaultProxy) -> None:
    proxy.inject("reset", times=2)
    for _ in range(2):
        conn = _conn(proxy)
        conn.request("GET", "/x")
        with pytest.raises(ConnectionResetError):
            conn.getresponse()
        conn.close()
    assert _get(proxy).status == 200
    assert proxy.faults_applied == 2


def test_stall_answers_nothing_until_the_client_gives_up(proxy: FaultProxy) -> None:
    proxy.inject("stall", seconds=5, times=1)
    conn = _conn(proxy, timeout=0.5)
    start = time.monotonic()
    conn.request("GET", "/x")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    assert 0.4 < time.monotonic() - start < 2
    conn.close()
    assert _get(proxy).status == 200


def test_stall_ends_by_closing_after_its_seconds(proxy: FaultProxy) -> None:
    proxy.inject("stall", seconds=0.3)
    conn = _conn(proxy, timeout=5)
    start = time.monotonic()
    conn.request("GET", "/x")
    with pytest.raises(http.client.RemoteDisconnected):
        conn.getresponse()
    assert 0.25 < time.monotonic() - start < 2


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_a_connection_fault_drops_idle_pooled_connections(proxy: FaultProxy, kind: str) -> None:
    conn = _conn(proxy)
    conn.request("GET", "/x")
    assert conn.getresponse().read() == b"path=/x"
    proxy.inject(kind, seconds=0.2)
    conn.sock.settimeout(2)
    assert conn.sock.recv(10) == b""  # the proxy closed the idle keep-alive connection at once
    conn.close()


def test_a_connection_still_finishing_its_exchange_is_dropped_before_inject_returns(
    proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    forward = FaultProxy._forward

    def lagging(self: FaultProxy, *args: object) -> bool:  # a proxy thread slow to get back, as under load
        kept = forward(self, *args)
        time.sleep(0.3)
        return kept

    monkeypatch.setattr(FaultProxy, "_forward", lagging)
    conn = _conn(proxy)
    conn.request("GET", "/x")
    assert conn.getresponse().read() == b"path=/x"  # answered: a client may reuse the connection now
    proxy.inject("reset")
    conn.sock.setblocking(False)
    assert conn.sock.recv(10) == b""  # closed already, so a client's next look at it sees it closed
    conn.close()


def test_a_status_fault_keeps_pooled_connections_and_answers_on_them(proxy: FaultProxy) -> None:
    conn = _conn(proxy)
    conn.request("GET", "/x")
    assert conn.getresponse().read() == b"path=/x"
    proxy.inject("status", status=503, times=1)
    conn.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        conn.sock.recv(10)  # still open: a client reusing it at once cannot meet a connection being closed
    conn.sock.setblocking(True)
    conn.request("GET", "/y")
    assert conn.getresponse().status == 503  # the fault, on the pooled connection
    assert _get(proxy).status == 200  # once


def test_fault_applies_to_a_request_on_a_kept_alive_connection(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"path=/a" in _read_until_close(raw, b"path=/a")
        # Injected while this connection is busy sending, so it is not idle and not dropped.
        raw.sendall(b"GET /b HTTP/1.1\r\n")
        time.sleep(0.1)
        proxy.inject("status", status=502, times=1)
        raw.sendall(b"Host: x\r\n\r\n")
        assert _read_until_close(raw).startswith(b"HTTP/1.1 502 Bad Gateway\r\n")


def test_close_stops_listening_and_ends_connections(upstream: int) -> None:
    proxy = FaultProxy("127.0.0.1", upstream)
    conn = _conn(proxy)
    conn.request("GET", "/x")
    conn.getresponse().read()
    proxy.inject("stall", seconds=30)
    stalled = _conn(proxy, timeout=5)
    stalled.request("GET", "/y")
    start = time.monotonic()
    proxy.close()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        stalled.getresponse()
    assert time.monotonic() - start < 3
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
    assert not [t for t in threading.enumerate() if t.name == f"fault-proxy-{proxy.port}"]


def test_refuses_unknown_kinds_counts_and_remote_upstreams(upstream: int, proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        proxy.inject("explode")
    with pytest.raises(ValueError, match="times"):
        proxy.inject("reset", times=0)
    for host in ("10.0.0.1", "example.com", "0.0.0.0"):
        with pytest.raises(ValueError, match="this machine"):
            FaultProxy(host, upstream)


def test_upstream_gone_closes_the_client_connection() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead_port = spare.getsockname()[1]
    with FaultProxy("127.0.0.1", dead_port, timeout=2) as proxy:
        conn = _conn(proxy)
        conn.request("GET", "/x")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            conn.getresponse()


def test_tls_on_the_listening_side(upstream: int) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with FaultProxy("127.0.0.1", upstream, ssl_context=server_ctx) as proxy:
        assert proxy.url.startswith("https://127.0.0.1:")
        conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=client_ctx, timeout=5)
        conn.request("GET", "/tls")
        assert conn.getresponse().read() == b"path=/tls"
        proxy.inject("reset")
        assert conn.sock.recv(10) == b""  # idle TLS connection dropped too
        conn.close()
        proxy.inject("status", status=500)
        conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=client_ctx, timeout=5)
        conn.request("GET", "/tls")
        assert conn.getresponse().status == 500
        conn.close()


def test_latency_delays_every_request_until_cleared(proxy: FaultProxy) -> None:
    proxy.inject("latency", seconds=0.05)
    conn = _conn(proxy)
    start = time.monotonic()
    for index in range(10):
        conn.request("GET", f"/slow/{index}")
        assert conn.getresponse().read() == f"path=/slow/{index}".encode()
    assert time.monotonic() - start >= 10 * 0.05
    proxy.clear()
    start = time.monotonic()
    for _ in range(10):
        conn.request("GET", "/fast")
        conn.getresponse().read()
    conn.close()
    assert time.monotonic() - start < 10 * 0.05
    assert proxy.faults_applied == 10


def test_latency_combines_with_a_breaking_fault_and_counts_times(proxy: FaultProxy) -> None:
    proxy.inject("latency", seconds=0.2, times=1)
    proxy.inject("status", status=503, times=1)  # a breaking fault does not replace the latency
    start = time.monotonic()
    assert _get(proxy).status == 503
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    assert _get(proxy).status == 200  # both were for one request only
    assert time.monotonic() - start < 0.2


def test_run_latency_is_once_per_request_and_concurrent_requests_wait_side_by_side(proxy: FaultProxy) -> None:
    """A large body, read and written in many chunks, waits once; requests on other connections wait in parallel."""
    delay, size = 0.2, 4 << 20  # per chunk, 4 MiB in 64 KiB pieces would wait 64 times
    apply_run_faults(proxy, latency=delay)
    conn = _conn(proxy)
    for method, body in (("PUT", b"b" * size), ("GET", None)):
        start = time.monotonic()
        conn.request(method, "/large", body=body)
        answer = conn.getresponse().read()
        assert delay <= time.monotonic() - start < 4 * delay, method
    assert answer == b"b" * size
    conn.close()
    done: list[int] = []

    def one(index: int) -> None:
        reply = _get(proxy, f"/side/{index}")
        done.append(reply.status)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(8)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert done == [200] * 8
    assert time.monotonic() - start < 4 * delay  # one after another they would take 8 delays


def test_bandwidth_caps_bodies_in_both_directions(proxy: FaultProxy) -> None:
    rate, size = 256 * 1024, 128 * 1024  # half a second a body at the cap
    proxy.inject("bandwidth", bytes_per_second=rate)
    conn = _conn(proxy)
    start = time.monotonic()
    conn.request("PUT", "/capped", body=b"u" * size)
    assert conn.getresponse().read() == b"stored %d" % size
    upload = time.monotonic() - start
    start = time.monotonic()
    conn.request("GET", "/capped")
    assert conn.getresponse().read() == b"u" * size
    download = time.monotonic() - start
    conn.close()
    assert upload >= 0.8 * size / rate and download >= 0.8 * size / rate
    assert upload < 10 and download < 10
    proxy.clear()
    start = time.monotonic()
    assert _get(proxy, "/capped").body == b"u" * size
    assert time.monotonic() - start < 0.8 * size / rate


def test_run_faults_shape_every_request_and_survive_clear(proxy: FaultProxy) -> None:
    apply_run_faults(proxy, latency=0.05, bandwidth=None)
    proxy.inject("status", status=500, times=1)
    proxy.clear()  # a case's clear step leaves the run's shaping in place
    start = time.monotonic()
    for _ in range(5):
        assert _get(proxy).status == 200
    assert time.monotonic() - start >= 5 * 0.05
    assert proxy.faults_applied == 0  # the run's shaping is not a case's fault
    apply_run_faults(proxy, bandwidth=128 * 1024)  # the latency is replaced: both are the run's one setting
    conn = _conn(proxy)
    conn.request("PUT", "/run-capped", body=b"r" * (64 * 1024))
    conn.getresponse().read()
    conn.close()
    start = time.monotonic()
    assert _get(proxy, "/run-capped").body == b"r" * (64 * 1024)
    assert time.monotonic() - start >= 0.8 * 0.5
    with pytest.raises(ValueError):
        apply_run_faults(proxy, latency=-1)
    with pytest.raises(ValueError):
        apply_run_faults(proxy, bandwidth=0)


def test_shaping_faults_need_their_amount(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="seconds"):
        proxy.inject("latency")
    with pytest.raises(ValueError, match="bytes_per_second"):
        proxy.inject("bandwidth", bytes_per_second=0)


def test_run_options_latency_and_bandwidth_parse_and_reach_pytest(tmp_path: Path) -> None:
    args = _parser().parse_args(["run", "--latency", "50ms", "--bandwidth", "1MiB/s"])
    assert (args.latency, args.bandwidth) == (0.05, 1 << 20)
    assert _parser().parse_args(["certify", "memory", "--latency", "0.2s"]).latency == 0.2
    for bad in (["--latency", "fast"], ["--bandwidth", "0/s"], ["--bandwidth", "1 lightyear"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(["run", *bad])
    # The pytest child accepts them; memory has no proxy, so they change nothing there.
    done = gspc("run", "--target", "memory", "--spec", "delete", "--latency", "50ms", "--bandwidth", "1MiB/s",
                "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
