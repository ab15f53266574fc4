"""The emulator's state: a case-insensitive Dropbox namespace and its upload sessions.

Every method returns the SDK's own result objects or raises :class:`RouteFailure` carrying the
SDK's typed error, so the HTTP layer only has to serialize them.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dropbox import files
from dropbox.content_hash import DropboxContentHasher

GiB = 1024**3


class RouteFailure(Exception):
    """A route error: ``error`` is an instance of the route's stone error union."""

    def __init__(self, error: Any) -> None:
        super().__init__(error)
        self.error = error


class BadRequest(Exception):
    """A request Dropbox answers with HTTP 400 and a plain-text message."""


class _Lookup(Exception):
    """A path lookup failed; routes wrap ``error`` (a files.LookupError) in their own union."""

    def __init__(self, error: Any) -> None:
        super().__init__(error)
        self.error = error


class _Write(Exception):
    """A write failed; routes wrap ``error`` (a files.WriteError) in their own union."""

    def __init__(self, error: Any) -> None:
        super().__init__(error)
        self.error = error


def content_hash(data: bytes) -> str:
    """Dropbox's content hash: SHA-256 over the SHA-256 of each 4 MiB block."""
    hasher = DropboxContentHasher()
    hasher.update(bytes(data))
    return hasher.hexdigest()


def member(union: type, tag: str, value: Any = None) -> Any:
    """The member ``tag`` of a stone union class, built with ``value`` when it carries one."""
    found = getattr(union, tag)
    return found(value) if callable(found) else found


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class _Node:
    folder: bool
    display: str
    id: str
    data: bytes = b""
    rev: str = ""
    hash: str = ""
    client_modified: datetime | None = None
    server_modified: datetime | None = None


@dataclass
class _Session:
    data: bytearray = field(default_factory=bytearray)
    closed: bool = False  # the client sent close=True: no more appends
    finished: bool = False  # committed by finish: the session is spent


class Store:
    """Files, folders, revisions, upload sessions and list cursors, behind one lock."""

    def __init__(self, *, session_size_maximum: int = 350 * GiB, page_size: int = 2000) -> None:
        self.session_size_maximum = session_size_maximum
        self.page_size = page_size
        self._lock = threading.RLock()
        self._nodes: dict[str, _Node] = {}
        self._deleted: dict[str, str] = {}  # path_lower -> path_display of deleted files
        self._sessions: dict[str, _Session] = {}
        self._cursors: dict[str, tuple[list[Any], int]] = {}
        self._revs = itertools.count(0x15F0000001)

    # -- paths ---------------------------------------------------------------------------------

    @staticmethod
    def _parts(path: str, *, root_ok: bool = False) -> list[str]:
        """The components of an API path; raises malformed_path for anything Dropbox refuses."""
        if path == "" and root_ok:
            return []
        parts = path.split("/")
        if not path.startswith("/") or any(p in ("", ".", "..") for p in parts[1:]):
            raise _Lookup(files.LookupError.malformed_path(None))
        return parts[1:]

    def _find(self, path: str) -> tuple[str, _Node]:
        """The node at a path (or ``id:``), case-insensitively."""
        if path.startswith("id:"):
            for key, node in self._nodes.items():
                if node.id == path:
                    return key, node
            raise _Lookup(files.LookupError.not_found)
        key = "/" + "/".join(self._parts(path)).lower()
        node = self._nodes.get(key)
        if node is None:
            raise _Lookup(files.LookupError.not_found)
        return key, node

    def _metadata(self, node: _Node) -> Any:
        name = node.display.rsplit("/", 1)[-1]
        if node.folder:
            return files.FolderMetadata(
                name=name, id=node.id, path_lower=node.display.lower(), path_display=node.display
            )
        return files.FileMetadata(
            name=name,
            id=node.id,
            client_modified=node.client_modified,
            server_modified=node.server_modified,
            rev=node.rev,
            size=len(node.data),
            path_lower=node.display.lower(),
            path_display=node.display,
            content_hash=node.hash,
            is_downloadable=True,
        )

    # -- writes --------------------------------------------------------------------------------

    def _commit(self, path: str, data: bytes, info: Any) -> Any:
        """Store a file the way upload and upload_session/finish do, honouring the write mode."""
        try:
            parts = self._parts(path)
        except _Lookup:
            raise _Write(files.WriteError.malformed_path(None)) from None
        display = ""
        for part in parts[:-1]:
            node = self._nodes.get((display + "/" + part).lower())
            if node is not None and not node.folder:
                raise _Write(files.WriteError.conflict(files.WriteConflictError.file_ancestor))
            display = node.display if node else display + "/" + part
        key = (display + "/" + parts[-1]).lower()
        display += "/" + parts[-1]
        existing = self._nodes.get(key)
        digest = content_hash(data)
        conflict = self._conflict(existing, info, digest)
        if conflict is not None and info.autorename:
            key, display, existing = self._free_name(display)
        elif conflict is not None:
            if conflict == "same":
                return self._metadata(existing)  # Dropbox does not re-store identical content
            raise _Write(files.WriteError.conflict(member(files.WriteConflictError, conflict)))
        self._make_parents(display)
        now = _now()
        node = _Node(
            folder=False,
            display=existing.display if existing else display,  # the first casing is kept
            id=existing.id if existing else "id:" + secrets.token_urlsafe(16),
            data=bytes(data),
            rev=f"{next(self._revs):x}",
            hash=digest,
            client_modified=info.client_modified or now,
            server_modified=now,
        )
        self._nodes[key] = node
        self._deleted.pop(key, None)
        return self._metadata(node)

    @staticmethod
    def _conflict(existing: _Node | None, info: Any, digest: str) -> str | None:
        """Why the write mode forbids this write: 'file', 'folder', 'same' (identical), or None."""
        if existing is None:
            return None
        if existing.folder:
            return "folder"
        mode = info.mode
        if mode.is_overwrite():
            return None
        if mode.is_update() and mode.get_update() == existing.rev:
            return None
        # Without strict_conflict, identical content is not a conflict (Dropbox's documented rule).
        return "file" if info.strict_conflict or existing.hash != digest else "same"

    def _free_name(self, display: str) -> tuple[str, str, None]:
        """The autorename target: ``name (1).ext``, ``name (2).ext``, ..."""
        head, _, name = display.rpartition("/")
        stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
        for n in itertools.count(1):
            candidate = f"{head}/{stem} ({n}){dot}{ext}"
            if candidate.lower() not in self._nodes:
                return candidate.lower(), candidate, None
        raise AssertionError("unreachable")

    def _make_parents(self, display: str) -> None:
        parts = display.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            folder = "/" + "/".join(parts[:i])
            if folder.lower() not in self._nodes:
                self._nodes[folder.lower()] = _Node(True, folder, "id:" + secrets.token_urlsafe(16))

    @staticmethod
    def _check_hash(data: bytes, expected: str | None, union: type) -> None:
        if expected is not None and expected != content_hash(data):
            raise RouteFailure(member(union, "content_hash_mismatch"))

    def upload(self, arg: Any, data: bytes) -> Any:
        """files/upload."""
        self._check_hash(data, arg.content_hash, files.UploadError)
        with self._lock:
            try:
                return self._commit(arg.path, data, arg)
            except _Write as exc:
                # Dropbox keeps the bytes in a closed session so the commit can be retried.
                session_id = self._new_session(_Session(bytearray(data), closed=True))
                failed = files.UploadWriteFailed(reason=exc.error, upload_session_id=session_id)
                raise RouteFailure(files.UploadError.path(failed)) from None

    def _new_session(self, session: _Session) -> str:
        session_id = "pid_upload_session:" + secrets.token_urlsafe(24)
        self._sessions[session_id] = session
        return session_id

    def session_start(self, arg: Any, data: bytes) -> Any:
        """files/upload_session/start."""
        if arg.session_type is not None and arg.session_type.is_concurrent():
            raise BadRequest("concurrent upload sessions are not implemented by this emulator")
        self._check_hash(data, arg.content_hash, files.UploadSessionStartError)
        with self._lock:
            session_id = self._new_session(_Session(bytearray(data), closed=bool(arg.close)))
        return files.UploadSessionStartResult(session_id=session_id)

    def _session(self, cursor: Any, union: type, wrap: bool) -> _Session:
        """The open session at exactly the cursor's offset, or the lookup error Dropbox gives."""

        def fail(tag: str, value: Any = None) -> RouteFailure:
            error = member(files.UploadSessionLookupError if wrap else union, tag, value)
            return RouteFailure(union.lookup_failed(error) if wrap else error)

        session = self._sessions.get(cursor.session_id)
        if session is None:
            raise fail("not_found")
        if session.finished or (session.closed and not wrap):
            raise fail("closed")
        if cursor.offset != len(session.data):
            offset = files.UploadSessionOffsetError(correct_offset=len(session.data))
            raise fail("incorrect_offset", offset)
        return session

    def session_append(self, arg: Any, data: bytes) -> None:
        """files/upload_session/append_v2."""
        union = files.UploadSessionAppendError
        with self._lock:
            session = self._session(arg.cursor, union, wrap=False)
            self._check_hash(data, arg.content_hash, union)
            if len(session.data) + len(data) > self.session_size_maximum:
                raise RouteFailure(union.too_large)
            session.data += data
            session.closed = bool(arg.close)
        return None

    def session_finish(self, arg: Any, data: bytes) -> Any:
        """files/upload_session/finish: commit the session's bytes plus this call's."""
        union = files.UploadSessionFinishError
        with self._lock:
            session = self._session(arg.cursor, union, wrap=True)
            self._check_hash(data, arg.content_hash, union)
            whole = bytes(session.data) + data
            if len(whole) > self.session_size_maximum:
                raise RouteFailure(union.lookup_failed(files.UploadSessionLookupError.too_large))
            try:
                result = self._commit(arg.commit.path, whole, arg.commit)
            except _Write as exc:
                raise RouteFailure(union.path(exc.error)) from None
            session.data, session.closed, session.finished = bytearray(whole), True, True
            return result

    # -- reads ---------------------------------------------------------------------------------

    def download(self, arg: Any) -> tuple[Any, bytes]:
        """files/download: the metadata and the whole content (the HTTP layer applies Range)."""
        with self._lock:
            try:
                _, node = self._find(arg.path)
            except _Lookup as exc:
                raise RouteFailure(files.DownloadError.path(exc.error)) from None
            if node.folder:
                raise RouteFailure(files.DownloadError.path(files.LookupError.not_file))
            return self._metadata(node), node.data

    def get_metadata(self, arg: Any) -> Any:
        """files/get_metadata (deleted files only with include_deleted)."""
        if arg.path == "":
            raise BadRequest('Error in call to API function "files/get_metadata": root folder is unsupported')
        with self._lock:
            try:
                return self._metadata(self._find(arg.path)[1])
            except _Lookup as exc:
                gone = self._deleted.get(arg.path.lower())
                if gone is not None and arg.include_deleted:
                    name = gone.rsplit("/", 1)[-1]
                    return files.DeletedMetadata(name=name, path_lower=gone.lower(), path_display=gone)
                raise RouteFailure(files.GetMetadataError.path(exc.error)) from None

    def delete(self, arg: Any) -> Any:
        """files/delete_v2: a folder goes with everything under it."""
        with self._lock:
            try:
                key, node = self._find(arg.path)
            except _Lookup as exc:
                raise RouteFailure(files.DeleteError.path_lookup(exc.error)) from None
            if arg.parent_rev is not None and (node.folder or node.rev != arg.parent_rev):
                conflict = files.WriteError.conflict(files.WriteConflictError.file)
                raise RouteFailure(files.DeleteError.path_write(conflict))
            for other in [k for k in self._nodes if k == key or k.startswith(key + "/")]:
                gone = self._nodes.pop(other)
                if not gone.folder:
                    self._deleted[other] = gone.display
            return files.DeleteResult(metadata=self._metadata(node))

    def list_folder(self, arg: Any) -> Any:
        """files/list_folder: a recursive listing includes the folder itself, as Dropbox does."""
        with self._lock:
            try:
                parts = self._parts(arg.path, root_ok=True)
                key = "/" + "/".join(parts).lower() if parts else ""
                if parts:
                    node = self._find(arg.path)[1]
                    if not node.folder:
                        raise _Lookup(files.LookupError.not_folder)
            except _Lookup as exc:
                raise RouteFailure(files.ListFolderError.path(exc.error)) from None
            entries = []
            for other, node in sorted(self._nodes.items()):
                inside = other.startswith(key + "/")
                direct = inside and "/" not in other[len(key) + 1 :]
                if (arg.recursive and (inside or other == key)) or direct:
                    entries.append(self._metadata(node))
            limit = min(arg.limit or self.page_size, self.page_size)
            return self._page(entries, 0, limit)

    def list_folder_continue(self, arg: Any) -> Any:
        """files/list_folder/continue."""
        with self._lock:
            state = self._cursors.pop(arg.cursor, None)
            if state is None:
                raise BadRequest('Error in call to API function "files/list_folder/continue": Invalid "cursor"')
            entries, position = state
            return self._page(entries, position, self.page_size)

    def _page(self, entries: list[Any], start: int, limit: int) -> Any:
        cursor = "AAE" + secrets.token_urlsafe(24)
        end = start + limit
        self._cursors[cursor] = (entries, min(end, len(entries)))
        while len(self._cursors) > 1000:  # bound memory: the oldest cursors expire first
            self._cursors.pop(next(iter(self._cursors)))
        return files.ListFolderResult(entries=entries[start:end], cursor=cursor, has_more=end < len(entries))

    # -- inspection for tests ------------------------------------------------------------------

    def paths(self) -> list[str]:
        """Every stored path (display form), sorted: what a test can assert about the namespace."""
        with self._lock:
            return sorted(node.display for node in self._nodes.values())
