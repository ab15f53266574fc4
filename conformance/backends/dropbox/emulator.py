"""A local HTTPS emulator of the Dropbox API routes the dropbox driver uses.

The wire format is the SDK's own: arguments are decoded and results and errors encoded with
the stone serializers the SDK ships, so a request the SDK would not send, or a reply it could
not parse, fails here as it would against Dropbox.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import trustme
from dropbox import files, stone_serializers, stone_validators

from conformance.backends.dropbox.store import BadRequest, RouteFailure, Store, member

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class _Route:
    route: Any  # the SDK's stone Route
    handler: Callable[[Store, Any, bytes], Any]
    error_union: type

    @property
    def style(self) -> str:
        return self.route.attrs["style"]


_ROUTES = {
    "files/upload": _Route(files.upload, Store.upload, files.UploadError),
    "files/upload_session/start": _Route(
        files.upload_session_start, Store.session_start, files.UploadSessionStartError
    ),
    "files/upload_session/append_v2": _Route(
        files.upload_session_append_v2, Store.session_append, files.UploadSessionAppendError
    ),
    "files/upload_session/finish": _Route(
        files.upload_session_finish, Store.session_finish, files.UploadSessionFinishError
    ),
    "files/download": _Route(files.download, lambda s, a, _: s.download(a), files.DownloadError),
    "files/get_metadata": _Route(files.get_metadata, lambda s, a, _: s.get_metadata(a), files.GetMetadataError),
    "files/delete_v2": _Route(files.delete_v2, lambda s, a, _: s.delete(a), files.DeleteError),
    "files/list_folder": _Route(files.list_folder, lambda s, a, _: s.list_folder(a), files.ListFolderError),
    "files/list_folder/continue": _Route(
        files.list_folder_continue, lambda s, a, _: s.list_folder_continue(a), files.ListFolderContinueError
    ),
}


@dataclass
class Fault:
    """An injected answer for the next ``count`` requests (to ``route`` only, when given)."""

    count: int
    status: int
    route: str | None = None
    retry_after: int | None = None
    reason: str = "too_many_requests"
    json_body: Any = None
    kind: str = "status"  # status | reset (drop the connection) | truncate (cut the body short) | stall
    seconds: float = 0.0  # how long a stall waits before serving the request


def error_document(
    status: int, retry_after: float | None = None, reason: str = "too_many_requests"
) -> tuple[bytes, str]:
    """An error answer as Dropbox sends it: JSON for 429 and 403 (the SDK decodes those), text otherwise."""
    if status == 429:
        error: dict[str, Any] = {"reason": {".tag": reason}}
        if retry_after is not None:
            error["retry_after"] = retry_after
        return json.dumps({"error_summary": f"{reason}/..", "error": error}).encode(), "application/json"
    if status == 403:
        return json.dumps({"error_summary": "no_permission/..", "error": {".tag": "no_permission"}}).encode(), (
            "application/json"
        )
    return b"injected failure", "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Call:
    """One request the emulator answered: for tests that assert how the driver talks."""

    route: str
    status: int
    size: int
    range: str | None


def error_summary(encoded: Any) -> str:
    """Dropbox's ``error_summary``: the tags of a typed error joined by '/', e.g. ``path/not_found/..``."""
    tags = []
    node = encoded
    while isinstance(node, dict) and ".tag" in node:
        tag = node[".tag"]
        tags.append(tag)
        inner = node.get(tag)
        if not isinstance(inner, dict):
            inner = next((v for v in node.values() if isinstance(v, dict) and ".tag" in v), None)
        node = inner
    return "/".join(tags) + "/.."


class DropboxEmulator:
    """The emulator: start() it, point an SDK client at ``host`` trusting ``ca_file``, stop() it."""

    def __init__(
        self,
        *,
        upload_size_maximum: int = 150 * MiB,
        session_size_maximum: int = 350 * GiB,
        page_size: int = 2000,
        token: str | None = None,
    ) -> None:
        self.upload_size_maximum = upload_size_maximum
        self.token = token or "emu-" + secrets.token_urlsafe(24)
        self.store = Store(session_size_maximum=session_size_maximum, page_size=page_size)
        self.calls: list[Call] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._dir: str | None = None
        self.ca_file = ""
        self.cert_file = ""
        self.host = ""
        self.port = 0
        self.tls_context: ssl.SSLContext | None = None  # the server side, for a proxy that stands in front

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> DropboxEmulator:
        """Make a test CA and a certificate for 127.0.0.1, and serve on an ephemeral port."""
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._dir = tempfile.mkdtemp(prefix="gspc-dropbox-emulator-")
        self.ca_file = str(Path(self._dir) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self.cert_file = str(Path(self._dir) / "server.pem")  # for a proxy in another process to answer as us
        cert.private_key_and_cert_chain_pem.write_to_path(self.cert_file)
        self._server = _Server(("127.0.0.1", 0), _Handler, context, self)
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.tls_context = context
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="dropbox-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, and remove the CA file."""
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> DropboxEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- client helpers ------------------------------------------------------------------------

    @property
    def host_map(self) -> dict[str, str]:
        """The SDK's per-client host map, every host pointing here."""
        return {"api": self.host, "content": self.host, "notify": self.host}

    def http_session(self) -> requests.Session:
        """A requests session that trusts only the emulator's CA (the environment's bundle is ignored)."""
        session = requests.Session()
        session.verify = self.ca_file
        # REQUESTS_CA_BUNDLE and friends would otherwise override verify (see ecosystem.md Q2).
        session.trust_env = False
        return session

    def client(self, token: str | None = None, **kwargs: Any) -> Any:
        """A dropbox.Dropbox client bound to this emulator, without SDK retries by default."""
        import dropbox

        kwargs.setdefault("max_retries_on_error", 0)
        kwargs.setdefault("max_retries_on_rate_limit", 0)
        kwargs.setdefault("timeout", 10)
        dbx = dropbox.Dropbox(token or self.token, session=self.http_session(), **kwargs)
        dbx._host_map = self.host_map  # no public argument for the host (ecosystem.md Q2, B)
        return dbx

    # -- faults --------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        route: str | None = None,
        retry_after: int | None = None,
        reason: str = "too_many_requests",
        json_body: Any = None,
        kind: str = "status",
        seconds: float = 0.0,
    ) -> None:
        """Answer the next ``count`` requests (to ``route``, e.g. ``files/download``) with ``status``.

        A 429 carries ``Retry-After`` and Dropbox's JSON rate-limit error with ``reason``, a 403
        a JSON AccessError (no_permission); ``retry_after`` adds ``Retry-After`` to any status;
        ``json_body`` replaces the body with that JSON (a 409 route error, say); other statuses
        answer plain text. ``kind="reset"`` drops the connection without an answer instead, and
        ``kind="truncate"`` serves the request but sends only half the body before closing;
        ``kind="stall"`` waits ``seconds`` and then serves the request.
        """
        if route is not None and route not in _ROUTES:
            raise ValueError(f"unknown route {route!r}; known: {sorted(_ROUTES)}")
        if kind not in ("status", "reset", "truncate", "stall"):
            raise ValueError(f"unknown fault kind {kind!r}; known: status, reset, truncate, stall")
        with self._lock:
            self._faults.append(Fault(count, status, route, retry_after, reason, json_body, kind, seconds))

    def clear_faults(self) -> None:
        """Forget every fault not yet served."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.route in (None, route):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- request handling ----------------------------------------------------------------------

    def handle(self, req: _Handler) -> None:
        """Answer one POST the way Dropbox does."""
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        name = req.path.split("?", 1)[0].removeprefix("/2/")
        spec = _ROUTES.get(name) if req.path.startswith("/2/") else None
        req.call = (name, len(body), req.headers.get("Range"))
        self._answer(req, name, spec, body)

    def record(self, call: tuple[str, int, str | None], status: int) -> None:
        """Log a call before its reply leaves, so a client never sees a reply the log lacks."""
        name, size, wanted = call
        with self._lock:
            self.calls.append(Call(name, status, size, wanted))

    def _answer(self, req: _Handler, name: str, spec: _Route | None, body: bytes) -> int:
        if spec is None:
            return req.reply(404, f"Unknown API function: {name!r}".encode(), "text/plain; charset=utf-8")
        fault = self._take_fault(name)
        if fault is not None and fault.kind == "reset":
            return req.drop()
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.seconds)
        elif fault is not None and fault.kind == "truncate":
            req.truncate = True
        elif fault is not None:
            return self._fault_reply(req, fault)
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _text(req, 400, f'Error in call to API function "{name}": Must provide HTTP header "Authorization"')
        if not secrets.compare_digest(auth[len("Bearer ") :], self.token):
            error = {".tag": "invalid_access_token"}
            return _json(req, 401, {"error_summary": "invalid_access_token/..", "error": error})
        try:
            arg, data = self._argument(req, name, spec, body)
            if spec.style == "upload" and len(data) > self.upload_size_maximum:
                raise RouteFailure(member(spec.error_union, "payload_too_large"))
            result = spec.handler(self.store, arg, data)
        except BadRequest as exc:
            return _text(req, 400, str(exc))
        except RouteFailure as exc:
            encoded = json.loads(stone_serializers.json_encode(spec.route.error_type, exc.error))
            return _json(req, 409, {"error_summary": error_summary(encoded), "error": encoded})
        if spec.style == "download":
            metadata, content = result
            return self._download_reply(req, spec, metadata, content)
        return req.reply(200, stone_serializers.json_encode(spec.route.result_type, result).encode())

    @staticmethod
    def _argument(req: _Handler, name: str, spec: _Route, body: bytes) -> tuple[Any, bytes]:
        """The decoded route argument and the binary payload, or BadRequest as Dropbox words it."""
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if spec.style == "rpc":
            if content_type != "application/json":
                raise BadRequest(f'Error in call to API function "{name}": Bad HTTP "Content-Type" header')
            raw, data = body.decode("utf-8", "replace"), b""
        else:
            raw = req.headers.get("Dropbox-API-Arg")
            if raw is None:
                raise BadRequest(f'Error in call to API function "{name}": Must provide HTTP header "Dropbox-API-Arg"')
            if spec.style == "upload" and content_type != "application/octet-stream":
                raise BadRequest(f'Error in call to API function "{name}": Bad HTTP "Content-Type" header')
            data = body
        try:
            return stone_serializers.json_decode(spec.route.arg_type, raw), data
        except (stone_validators.ValidationError, ValueError) as exc:
            raise BadRequest(f'Error in call to API function "{name}": {exc}') from None

    def _download_reply(self, req: _Handler, spec: _Route, metadata: Any, content: bytes) -> int:
        """The content (or the requested byte range) with the metadata in Dropbox-API-Result."""
        result = stone_serializers.json_encode(spec.route.result_type, metadata)
        headers = {"Dropbox-API-Result": result}
        wanted = req.headers.get("Range")
        if not wanted:
            return req.reply(200, content, "application/octet-stream", headers)
        try:
            span = _parse_range(wanted, len(content))
        except _Unsatisfiable:
            headers["Content-Range"] = f"bytes */{len(content)}"
            return req.reply(416, b"", "application/octet-stream", headers)
        if span is None:
            return req.reply(200, content, "application/octet-stream", headers)
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{len(content)}"
        return req.reply(206, content[first : last + 1], "application/octet-stream", headers)

    @staticmethod
    def _fault_reply(req: _Handler, fault: Fault) -> int:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.json_body is not None:
            return _json(req, fault.status, fault.json_body, headers)
        body, content_type = error_document(fault.status, fault.retry_after, fault.reason)
        return req.reply(fault.status, body, content_type, headers)


class _Unsatisfiable(Exception):
    """The Range asks for bytes the file does not have (HTTP 416)."""


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """First and last byte of a single ``bytes=`` range; None to ignore the header, as HTTP allows."""
    unit, _, spec = header.partition("=")
    first_text, dash, last_text = spec.strip().partition("-")
    try:
        first = int(first_text) if first_text else None
        last = int(last_text) if last_text else None
    except ValueError:
        return None
    if unit.strip() != "bytes" or not dash or (first is None and last is None):
        return None
    if first is None:  # a suffix range: the last N bytes
        if not last or not size:
            raise _Unsatisfiable
        return max(size - last, 0), size - 1
    if first >= size or (last is not None and last < first):
        raise _Unsatisfiable
    return first, size - 1 if last is None else min(last, size - 1)


def _json(req: _Handler, status: int, payload: Any, headers: dict[str, str] | None = None) -> int:
    # The SDK asserts this exact content type, with no charset parameter.
    return req.reply(status, json.dumps(payload).encode(), "application/json", headers)


def _text(req: _Handler, status: int, message: str) -> int:
    return req.reply(status, message.encode(), "text/plain; charset=utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    server_version = "gspc-dropbox-emulator"
    server: _Server
    call: tuple[str, int, str | None] | None = None  # set by the emulator for its call log
    truncate = False  # set by a truncate fault: the next reply stops half way

    def do_POST(self) -> None:  # noqa: N802 - the http.server naming
        self.server.emulator.handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self.call = None
        self.reply(405, b"Method not allowed: use POST", "text/plain; charset=utf-8")

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> int:
        """Send a complete response with a Content-Length; returns the status."""
        if self.call is not None:
            self.server.emulator.record(self.call, status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Dropbox-Request-Id", secrets.token_hex(16))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.truncate:
            self.truncate = False
            self.wfile.write(body[: len(body) // 2])
            return self.drop()
        self.wfile.write(body)
        return status

    def drop(self) -> int:
        """Close the connection at once, answering nothing more (a reset, as the client sees it)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        return 0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class signature
        """Quiet: the call log on the emulator records what tests need."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext, emulator: Any) -> None:
        super().__init__(address, handler)
        self.context = context
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow client cannot
        # hold up accept() for everyone else.
        request.settimeout(30)
        # Headers and body go out as separate writes; without NODELAY each reply waits ~40 ms
        # for a delayed ACK.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self._conn_lock:
            self._connections.add(tls)
        try:
            super().finish_request(tls, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def close_connections(self) -> None:
        """Shut down kept-alive connections, so no handler thread outlives stop()."""
        with self._conn_lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that drop a connection are normal here; stay quiet."""
