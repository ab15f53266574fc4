"""The dropbox driver: the official SDK, append through upload sessions (GSP-44), idempotent delete.

The SDK is imported when a driver is built, never at module import, so the harness can list
this driver (and say why a backend cannot run) on a machine without the ``dropbox`` package.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conformance import errors
from conformance.adapters.dropbox import paths
from conformance.driver import OPERATIONS, BaseDriver, Capabilities, DriverError, Mode, Object

MiB = 1024 * 1024
GiB = 1024 * MiB

#: Dropbox's largest file through upload sessions (gsp-rules 1.5: append_total_size_maximum).
APPEND_TOTAL_SIZE_MAXIMUM = 350 * GiB
#: Dropbox's largest body for one upload request.
REQUEST_SIZE_MAXIMUM = 150 * MiB

CREDENTIALS_HINT = "give the option token, or app_key and refresh_token (and app_secret unless the app uses PKCE)"


@dataclass
class AppendSession:
    """The private handle of an append object: its upload session and the next offset."""

    session_id: str
    offset: int = 0


class DropboxDriver(BaseDriver):
    """Dropbox through the official SDK, confined to one root folder."""

    name = "dropbox"
    service = "dropbox"
    default_backends = ("emulator",)

    def __init__(
        self,
        token: str | None = None,
        *,
        app_key: str | None = None,
        app_secret: str | None = None,
        refresh_token: str | None = None,
        root: str = "/gspc",
        timeout: float = 10.0,
        max_retries_on_error: int = 0,
        max_retries_on_rate_limit: int = 0,
        request_size_maximum: int = REQUEST_SIZE_MAXIMUM,
        host: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        if not (token or (app_key and refresh_token)):
            raise DriverError(f"dropbox: no credentials given; {CREDENTIALS_HINT}")
        # Options may arrive as strings from the command line (--option KEY=VALUE).
        timeout = _number("timeout", timeout, float)
        max_retries_on_error = _number("max_retries_on_error", max_retries_on_error, int)
        max_retries_on_rate_limit = _number("max_retries_on_rate_limit", max_retries_on_rate_limit, int)
        request_size_maximum = _number("request_size_maximum", request_size_maximum, int)
        if request_size_maximum <= 0:
            raise DriverError("dropbox: request_size_maximum must be a positive number of bytes")
        try:
            import dropbox
        except ImportError as exc:
            hint = "pip install 'gsp-conformance[dropbox]'"
            raise DriverError(f"dropbox: the SDK is not installed ({exc}); {hint}") from None
        from conformance.adapters.dropbox import errmap

        self.root = paths.normalize_root(root)
        self.request_size_maximum = request_size_maximum
        self._sdk = dropbox
        self._files = dropbox.files
        self._errmap = errmap
        self._secrets = tuple(s for s in (token, refresh_token, app_secret) if s)
        self._append_lock = threading.Lock()  # write_append is thread safe (APP-15)
        # The SDK's exceptions drop the HTTP status of 403 route errors and the Retry-After of
        # 503s; a response hook keeps both, per thread, for the error mapping.
        self._http = threading.local()
        session = self._http_session(ca_file)
        session.hooks["response"].append(self._remember)
        self._dbx = dropbox.Dropbox(
            oauth2_access_token=token,
            oauth2_refresh_token=refresh_token,
            app_key=app_key,
            app_secret=app_secret,
            session=session,
            timeout=timeout,
            # Retries belong to the harness: the SDK's own would hide the errors under test.
            max_retries_on_error=max_retries_on_error,
            max_retries_on_rate_limit=max_retries_on_rate_limit,
        )
        if host:
            # The SDK has no host argument; the per-client map does not depend on import order.
            self._dbx._host_map = {"api": host, "content": host, "notify": host}
        self._caps = Capabilities(
            operations=OPERATIONS,
            pairs={"read": {"offset", "size"}},
            limits={"append_total_size_maximum": APPEND_TOTAL_SIZE_MAXIMUM},
        )

    def _remember(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._http.last = (response.status_code, response.headers.get("Retry-After"))

    def _http_session(self, ca_file: str | None) -> Any:
        if ca_file is None:
            return self._sdk.create_session()
        import requests

        session = requests.Session()
        session.verify = ca_file
        # REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE would otherwise replace verify (ecosystem.md Q2).
        session.trust_env = False
        return session

    def close(self) -> None:
        """Close the HTTP session."""
        with contextlib.suppress(Exception):
            self._dbx.close()

    def capabilities(self) -> Capabilities:
        return self._caps

    # -- operations ----------------------------------------------------------------------------

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        target = self._api("write", path)
        payload = self._bytes("write", path, data)
        overwrite = self._files.WriteMode.overwrite
        with self._call("write", path):
            if len(payload) <= self.request_size_maximum:
                meta = self._dbx.files_upload(payload, target, mode=overwrite, mute=True)
            else:
                meta = self._upload_in_session(payload, target)
        return self._object(path, meta)

    def _upload_in_session(self, payload: bytes, target: str) -> Any:
        """Above the per-request limit: start, append, finish, one chunk per request."""
        files, step = self._files, self.request_size_maximum
        chunks = [payload[i : i + step] for i in range(0, len(payload), step)]
        session_id = self._dbx.files_upload_session_start(chunks[0]).session_id
        offset = len(chunks[0])
        for chunk in chunks[1:-1]:
            self._dbx.files_upload_session_append_v2(chunk, files.UploadSessionCursor(session_id, offset))
            offset += len(chunk)
        commit = files.CommitInfo(path=target, mode=files.WriteMode.overwrite, mute=True)
        return self._dbx.files_upload_session_finish(chunks[-1], files.UploadSessionCursor(session_id, offset), commit)

    def read(self, path: str, **pairs: Any) -> bytes:
        self.check_pairs("read", pairs, path)
        target = self._api("read", path)
        offset, size = self._span(path, pairs)
        if size == 0:
            self._stat_file("read", path, target)  # no byte to fetch, but the file must exist
            return b""
        headers = None
        if offset or size is not None:
            last = "" if size is None else str(offset + size - 1)
            headers = {"Range": f"bytes={offset}-{last}"}
        with self._call("read", path):
            try:
                _, response = self._dbx.files_download(target, extra_headers=headers)
            except self._sdk.exceptions.HttpError as exc:
                if exc.status_code == 416:  # the range starts at or after the end of the file
                    return b""
                raise
            with contextlib.closing(response):
                body = response.content
            if headers is not None and response.status_code == 200:
                # The server ignored Range (HTTP allows it): slice here instead.
                body = body[offset : None if size is None else offset + size]
        return body

    def _span(self, path: str, pairs: dict[str, Any]) -> tuple[int, int | None]:
        offset, size = pairs.get("offset", 0), pairs.get("size")
        for name, value in (("offset", offset), ("size", size)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise errors.RestrictionDissatisfied(
                    f"{name} must be a non-negative integer, not {value!r}", op="read", path=path, driver=self.name
                )
        return offset or 0, size

    def check_access(self) -> None:
        """Fail fast with one line when the token is refused (a root that does not exist yet is fine)."""
        try:
            with self._call("stat", None):
                self._dbx.files_get_metadata(self.root)
        except errors.ObjectNotExist:
            return
        except errors.PermissionDenied:
            raise DriverError("dropbox: the credentials were refused (check DROPBOX_TOKEN or the refresh token)") from (
                None
            )
        except errors.StorageError as exc:
            raise DriverError(f"dropbox: cannot reach Dropbox: {type(exc).__name__}: {exc.message}") from None

    def stat(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("stat", pairs, path)
        target = self._api("stat", path)
        with self._call("stat", path):
            meta = self._dbx.files_get_metadata(target)
        if isinstance(meta, self._files.DeletedMetadata):  # only with include_deleted, but be sure
            raise errors.ObjectNotExist("deleted", op="stat", path=path, driver=self.name)
        return self._object(path, meta)

    def _stat_file(self, op: str, path: str, target: str) -> None:
        with self._call(op, path):
            meta = self._dbx.files_get_metadata(target)
        if isinstance(meta, self._files.FolderMetadata):
            raise errors.ObjectModeInvalid(
                "a folder is at this path", expected=Mode.READ, actual=Mode.DIR, op=op, path=path, driver=self.name
            )

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        target = self._api("delete", path)
        with self._call("delete", path):
            try:
                self._dbx.files_delete_v2(target)
            except self._sdk.exceptions.ApiError as exc:
                error = exc.error
                # GSP-46: Dropbox answers path_lookup/not_found for a missing path; that is success.
                if not (error.is_path_lookup() and error.get_path_lookup().is_not_found()):
                    raise

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        """Files whose key starts with ``prefix``, compared as Dropbox compares paths (ignoring case)."""
        self.check_pairs("list", pairs, prefix)
        reason = paths.bad_key(prefix, prefix=True)
        if reason is not None:
            raise errors.RestrictionDissatisfied(f"{reason}: {prefix!r}", op="list", path=prefix, driver=self.name)
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        return self._list(prefix, paths.to_api(self.root, folder))

    def _list(self, prefix: str, folder: str) -> Iterator[Object]:
        wanted = paths.to_api(self.root, prefix).lower() if prefix else self.root.lower() + "/"
        with self._call("list", prefix):
            try:
                page = self._dbx.files_list_folder(folder, recursive=True)
            except self._sdk.exceptions.ApiError as exc:
                lookup = exc.error.get_path() if exc.error.is_path() else None
                if lookup is not None and (lookup.is_not_found() or lookup.is_not_folder()):
                    return  # nothing can be under a folder that does not exist
                raise
            while True:
                for entry in page.entries:
                    if isinstance(entry, self._files.FileMetadata) and entry.path_lower.startswith(wanted):
                        key = paths.to_key(self.root, entry.path_display, entry.path_lower)
                        if key:
                            yield self._object(key, entry)
                if not page.has_more:
                    return
                page = self._dbx.files_list_folder_continue(page.cursor)

    def create_append(self, path: str, **pairs: Any) -> Object:
        """Start an upload session: nothing appears at the path until commit_append (GSP-44)."""
        self.check_pairs("create_append", pairs, path)
        self._api("create_append", path)
        with self._call("create_append", path):
            session_id = self._dbx.files_upload_session_start(b"").session_id
        # Mode APPEND only: the object is not readable before commit (gsp-rules 1.5).
        return Object(path=path, mode=Mode.APPEND, size=0, append_offset=0, handle=AppendSession(session_id))

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self.check_pairs("write_append", pairs)
        self.check_append("write_append", obj)
        session = self._session("write_append", obj)
        payload = self._bytes("write_append", None, data)
        if session.offset + len(payload) > APPEND_TOTAL_SIZE_MAXIMUM:
            raise errors.RestrictionDissatisfied(
                f"size limit exceeded: {session.offset + len(payload)} > append_total_size_maximum",
                op="write_append",
                driver=self.name,
            )
        step = self.request_size_maximum
        chunks = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        with self._append_lock:
            for chunk in chunks:
                cursor = self._files.UploadSessionCursor(session.session_id, session.offset)
                with self._call("write_append", None, obj.mode, session.offset):
                    self._dbx.files_upload_session_append_v2(chunk, cursor)
                session.offset += len(chunk)  # per chunk, so a failure leaves the true offset
                obj.append_offset = obj.size = session.offset
        return len(payload)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        """Finish the session with overwrite at the path; the object turns readable, no longer appendable."""
        self.check_pairs("commit_append", pairs)
        self.check_append("commit_append", obj)
        session = self._session("commit_append", obj)
        target = self._api("commit_append", obj.path, report_path=False)
        files = self._files
        commit = files.CommitInfo(path=target, mode=files.WriteMode.overwrite, mute=True)
        cursor = files.UploadSessionCursor(session.session_id, session.offset)
        with self._append_lock, self._call("commit_append", None, obj.mode, session.offset):
            meta = self._dbx.files_upload_session_finish(b"", cursor, commit)
        done = self._object(obj.path, meta)
        # As go-storage's dropbox did: clear APPEND, set READ when the file is downloadable.
        obj.mode = (obj.mode & ~Mode.APPEND) | (done.mode & Mode.READ)
        obj.size, obj.etag = done.size, done.etag
        obj.system.update(done.system)

    # -- helpers -------------------------------------------------------------------------------

    def _api(self, op: str, path: str, *, report_path: bool = True) -> str:
        """The Dropbox path of a caller's key; refuses keys that would leave the root."""
        reason = paths.bad_key(path)
        if reason is not None:
            raise errors.RestrictionDissatisfied(
                f"{reason}: {path!r}", op=op, path=path if report_path else None, driver=self.name
            )
        return paths.to_api(self.root, path)

    def _bytes(self, op: str, path: str | None, data: Any) -> bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise errors.Unexpected(
                f"data must be bytes, not {type(data).__name__}", op=op, path=path, driver=self.name
            )
        return bytes(data)

    def _session(self, op: str, obj: Object) -> AppendSession:
        if not isinstance(obj.handle, AppendSession):
            raise errors.ObjectModeInvalid(
                "object carries no upload session from create_append",
                expected=Mode.APPEND,
                actual=obj.mode,
                op=op,
                driver=self.name,
            )
        return obj.handle

    @contextlib.contextmanager
    def _call(self, op: str, path: str | None, mode: Mode | None = None, offset: int | None = None) -> Iterator[None]:
        """Translate every SDK or transport exception into the taxonomy, the original as __cause__."""
        self._http.last = None
        try:
            yield
        except errors.StorageError:
            raise
        except Exception as exc:
            raise self._errmap.translate(
                exc,
                op=op,
                path=path,
                driver=self.name,
                mode=mode,
                offset=offset,
                secrets=self._secrets,
                http=self._http.last,
            ) from exc

    def _object(self, key: str, meta: Any) -> Object:
        files = self._files
        if isinstance(meta, files.FolderMetadata):
            return Object(path=key, mode=Mode.DIR, system={"id": meta.id})
        return Object(
            path=key,
            mode=Mode.READ if meta.is_downloadable is not False else Mode(0),
            size=meta.size,
            etag=meta.rev,
            system={
                "id": meta.id,
                "rev": meta.rev,
                "content_hash": meta.content_hash,
                "server_modified": f"{meta.server_modified:%Y-%m-%dT%H:%M:%SZ}",
            },
        )


def _number(name: str, value: Any, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise DriverError(f"dropbox: option {name} must be a number, not {value!r}") from None
    if number < 0:
        raise DriverError(f"dropbox: option {name} must not be negative, not {value!r}")
    return number
