"""A driver over a local directory: keys are relative paths below a root it never leaves."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conformance import errors
from conformance.driver import OPERATIONS, BaseDriver, Capabilities, DriverError, Mode, Object

FILE_MODE = Mode.READ | Mode.APPEND  # any regular file can be appended to, as go-storage's fs reports


class FsDriver(BaseDriver):
    """Files under ``root``; append writes through to the file, so commit has nothing to do."""

    name = "fs"
    default_backends = (None,)

    def __init__(self, root: str, remove_root_on_close: bool = False) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_root = remove_root_on_close
        self._caps = Capabilities(
            operations=OPERATIONS,
            pairs={"read": {"offset", "size"}},
        )

    @classmethod
    def open_backend(cls, backend: str | None, options: dict[str, Any]) -> FsDriver:
        """``fs`` works in a fresh temporary directory; ``fs@/some/dir`` in that directory."""
        if backend is None or backend == "tmp":
            return cls(tempfile.mkdtemp(prefix="gspc-fs-"), remove_root_on_close=True, **options)
        if not os.path.isabs(backend):
            raise DriverError(f"target fs@{backend}: the backend must be an absolute directory path")
        return cls(backend, **options)

    def capabilities(self) -> Capabilities:
        return self._caps

    def close(self) -> None:
        if self._remove_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        target = self._file(path, "write")
        with self._errors("write", path):
            self._refuse_dir(target, "write", path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".gspc-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temp, target)  # readers never see a half-written file
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
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
        with self._errors("stat", path):
            info = self._file(path, "stat").stat()
        if os.path.isdir(self._file(path, "stat")):
            return Object(path=path, mode=Mode.DIR, size=0)
        return Object(path=path, mode=FILE_MODE, size=info.st_size)

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        target = self._file(path, "delete")
        with self._errors("delete", path):
            try:
                if target.is_dir() and not target.is_symlink():
                    target.rmdir()  # only an empty directory: delete removes one object (DEL-6)
                else:
                    target.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return  # nothing at the path: idempotent delete (GSP-46)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        base = self._file(prefix.rsplit("/", 1)[0] if "/" in prefix else "", "list")
        found = []
        with self._errors("list", prefix):
            for folder, _, names in os.walk(base):
                for name in names:
                    key = Path(folder, name).relative_to(self.root).as_posix()
                    if key.startswith(prefix) and not name.startswith(".gspc-"):
                        found.append(key)
        for key in sorted(found):
            with contextlib.suppress(errors.ObjectNotExist):  # removed while listing
                yield self.stat(key)

    def create_append(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("create_append", pairs, path)
        target = self._file(path, "create_append")
        with self._errors("create_append", path):
            self._refuse_dir(target, "create_append", path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.open("wb").close()  # an existing object is truncated (APP-3)
        return Object(path=path, mode=FILE_MODE, size=0, append_offset=0)

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self.check_pairs("write_append", pairs)
        self.check_append("write_append", obj)
        target = self._file(obj.path, "write_append")
        with self._errors("write_append", None):
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("ab") as handle:
                handle.write(data)
                size = handle.tell()
        obj.append_offset = obj.size = size
        return len(data)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        self.check_pairs("commit_append", pairs)
        self.check_append("commit_append", obj)

    def _file(self, path: str, op: str) -> Path:
        """The file of a key, refusing keys that would leave the root."""
        target = (self.root / path).resolve() if path else self.root
        if target != self.root and self.root not in target.parents:
            raise errors.PermissionDenied("path leaves the driver's root", op=op, path=path, driver=self.name)
        return target

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
