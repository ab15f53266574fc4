"""A driver over a local directory: keys are relative paths below a root it never leaves.

A key is resolved through symlinks before use and refused if it would land outside the root;
a key that is itself a symlink is replaced or unlinked, never written through. Folders exist
only while they hold something: delete removes the folders it empties, up to the root.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from conformance import errors
from conformance.driver import OPERATIONS, BaseDriver, Capabilities, Mode, Object

FILE_MODE = Mode.READ | Mode.APPEND  # any regular file can be appended to, as go-storage's fs reports
TEMP = ".gspc-"  # temporary files start so; list never shows them
PARENT_ATTEMPTS = 3  # a concurrent delete may prune a folder between its mkdir and our file
T = TypeVar("T")


class FsDriver(BaseDriver):
    """Files under ``root``; append writes through to the file, so commit has nothing to do."""

    name = "fs"
    service = "dir"  # ``fs`` runs in a temporary directory the harness makes, ``fs@/some/dir`` in that one
    default_backends = (None,)

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        self._root = str(self.root)
        self._below = self._root.rstrip(os.sep) + os.sep
        self.root.mkdir(parents=True, exist_ok=True)
        self._caps = Capabilities(
            operations=OPERATIONS,
            pairs={"read": {"offset", "size"}},
        )

    def capabilities(self) -> Capabilities:
        return self._caps

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        target = self._file(path, "write", follow=False)
        with self._errors("write", path):
            self._refuse_dir(target, "write", path)
            self._replace(target, data)
        return Object(path=path, mode=FILE_MODE, size=len(data))

    def read(self, path: str, **pairs: Any) -> bytes:
        self.check_pairs("read", pairs, path)
        offset, size = int(pairs.get("offset", 0)), pairs.get("size")
        if offset < 0 or (size is not None and int(size) < 0):
            raise errors.RestrictionDissatisfied("offset and size must not be negative", op="read", path=path)
        with self._errors("read", path), self._file(path, "read").open("rb") as handle:
            handle.seek(offset)
            return handle.read() if size is None else handle.read(int(size))

    def stat(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("stat", pairs, path)
        target = self._file(path, "stat")
        with self._errors("stat", path):
            info = target.stat()
        if os.path.isdir(target):
            return Object(path=path, mode=Mode.DIR, size=0)
        return Object(path=path, mode=FILE_MODE, size=info.st_size)

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        target = self._file(path, "delete", follow=False)
        if target == self.root:
            raise errors.PermissionDenied("the root is not an object", op="delete", path=path, driver=self.name)
        with self._errors("delete", path):
            for temp in _temp_files(target):  # left by an interrupted write
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            try:
                if target.is_dir() and not target.is_symlink():
                    target.rmdir()  # only an empty directory: delete removes one object (DEL-6)
                else:
                    target.unlink()  # a symlink goes itself; what it points to stays
            except (FileNotFoundError, NotADirectoryError):
                pass  # nothing at the path: idempotent delete (GSP-46)
            self._prune(target.parent)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        base = self._file(prefix.rsplit("/", 1)[0] if "/" in prefix else "", "list")
        found = []
        with self._errors("list", prefix):
            for folder, _, names in os.walk(base):
                for name in names:
                    key = Path(folder, name).relative_to(self.root).as_posix()
                    outside = not self._inside(Path(os.path.realpath(Path(folder, name))))  # a symlink out
                    if key.startswith(prefix) and not name.startswith(TEMP) and not outside:
                        found.append(key)
        for key in sorted(found):
            with contextlib.suppress(errors.ObjectNotExist):  # removed while listing
                yield self.stat(key)

    def create_append(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("create_append", pairs, path)
        target = self._file(path, "create_append", follow=False)
        with self._errors("create_append", path):
            self._refuse_dir(target, "create_append", path)
            self._replace(target, b"")  # an existing object is replaced by an empty one (APP-3)
        return Object(path=path, mode=FILE_MODE, size=0, append_offset=0)

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self.check_pairs("write_append", pairs)
        self.check_append("write_append", obj)
        target = self._file(obj.path, "write_append")
        with self._errors("write_append", None), self._in_parent(target, lambda: target.open("ab")) as handle:
            handle.write(data)
            size = handle.tell()
        obj.append_offset = obj.size = size
        return len(data)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        self.check_pairs("commit_append", pairs)
        self.check_append("commit_append", obj)

    def _file(self, path: str, op: str, *, follow: bool = True) -> Path:
        """The file of a key, refusing keys that would leave the root; ``follow=False`` keeps a final symlink."""
        context = {"op": op, "path": path, "driver": self.name}
        try:
            os.fsencode(path)
        except UnicodeEncodeError:
            raise errors.RestrictionDissatisfied("the path cannot be a file name here", **context) from None
        if "\x00" in path:
            raise errors.RestrictionDissatisfied("the path contains a NUL", **context)
        lexical = self.root / path if path else self.root
        if follow or lexical.name == "..":
            target = Path(os.path.realpath(lexical))
        else:
            target = Path(os.path.realpath(lexical.parent)) / lexical.name
        if not self._inside(target):
            raise errors.PermissionDenied("path leaves the driver's root", **context)
        return target

    def _inside(self, target: Path) -> bool:
        # Both are resolved, so a string prefix ending in the separator is the parent test, without a Path per parent.
        text = str(target)
        return text == self._root or text.startswith(self._below)

    def _replace(self, target: Path, data: bytes) -> None:
        """Write a temporary file beside the target, then move it into place: readers never see half a file."""
        prefix = _temp_prefix(target.name)  # named from the target, so deleting the target sweeps it
        fd, temp = self._in_parent(target, lambda: tempfile.mkstemp(dir=target.parent, prefix=prefix))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, target)  # replaces a symlink at the key, never writes through it
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _in_parent(self, target: Path, create: Callable[[], T]) -> T:
        """Make the target's folders and create it; again if a concurrent delete pruned a folder meanwhile."""
        attempts = PARENT_ATTEMPTS
        while True:
            attempts -= 1
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                return create()
            except FileNotFoundError:
                if not attempts:
                    raise

    def _prune(self, folder: Path) -> None:
        """Remove the folders a delete emptied, up to but not including the root."""
        while folder != self.root and self._inside(folder):
            try:
                folder.rmdir()
            except OSError:  # not empty, already gone or busy: it stays, and so do its parents
                return
            folder = folder.parent

    def _refuse_dir(self, target: Path, op: str, path: str) -> None:
        if target.is_dir():
            raise errors.ObjectModeInvalid(
                "the path is a directory",
                expected=Mode.READ,
                actual=Mode.DIR,
                op=op,
                path=path,
                driver=self.name,
            )

    @contextlib.contextmanager
    def _errors(self, op: str, path: str | None) -> Iterator[None]:
        """Translate OS errors into the taxonomy, keeping the OS error as the cause."""
        try:
            yield
        except errors.StorageError:
            raise
        except OSError as exc:
            context = {"op": op, "path": path, "driver": self.name}
            message = exc.strerror or str(exc)
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise errors.ObjectNotExist(message, **context) from exc
            if isinstance(exc, PermissionError):
                raise errors.PermissionDenied(message, **context) from exc
            if isinstance(exc, IsADirectoryError):
                raise errors.ObjectModeInvalid(message, expected=Mode.READ, actual=Mode.DIR, **context) from exc
            if exc.errno == errno.ENOSPC:
                raise errors.RestrictionDissatisfied(message, **context) from exc
            raise errors.Unexpected(message, **context) from exc


def _temp_files(target: Path) -> list[Path]:
    """The temporary files of a target beside it; one plain listing of the folder, not a glob per file."""
    prefix = _temp_prefix(target.name)
    try:
        names = os.listdir(target.parent)
    except OSError:  # no folder, or one that cannot be read: no temporary file to find, as a glob finds none
        return []
    return [target.parent / name for name in names if name.startswith(prefix)]


def _temp_prefix(name: str) -> str:
    """The name start of a target's temporary files: a digest keeps it short and free of glob characters."""
    return f"{TEMP}{hashlib.sha256(os.fsencode(name)).hexdigest()[:32]}."
