"""Deliberately broken drivers for the invariants and the clauses of issue 10: realistic one-line bugs.

Each is the memory driver (or memory behind the simulated network) with one bug; ``breaks`` names
the exact clauses the bundled specs must fail for it, invariants included.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterator
from typing import Any

from broken_drivers import FaultyMemory

from conformance import errors
from conformance.adapters import sse
from conformance.adapters.memory import MemoryDriver
from conformance.driver import Object


class WriteReturnsNone(MemoryDriver):
    """write stores the object but forgets to return it."""

    breaks = {"storager.result-types"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        super().write(path, data, **pairs)
        return None  # type: ignore[return-value]


class LargeWriteTruncated(MemoryDriver):
    """A write above 4 MiB keeps only its first 4 MiB (a multipart upload that drops its last part)."""

    breaks = {"storager.roundtrip", "storager.result-types", "sse.s3-write", "sse.c-roundtrip"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        return super().write(path, data[: 4 * 1024 * 1024], **pairs)


class OverwriteIgnored(MemoryDriver):
    """A write to a path that holds an object reports success and keeps (and returns) the old one."""

    breaks = {"storager.overwrite", "storager.list-exact", "storager.result-types"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        if path in self._objects and self._objects[path].data:
            return self._object(path, self._objects[path])
        return super().write(path, data, **pairs)


class StaleStatCache(MemoryDriver):
    """stat answers from a cache filled on first use, so an overwrite's new size goes unseen."""

    breaks = {"storager.overwrite"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._seen: dict[str, Object] = {}

    def stat(self, path: str, **pairs: Any) -> Object:
        if path not in self._seen:
            self._seen[path] = super().stat(path, **pairs)
        return dataclasses.replace(self._seen[path])


class ListsLowerCase(MemoryDriver):
    """list yields paths lower-cased below the prefix, as a Dropbox driver reading ``path_lower``."""

    breaks = {"storager.list-exact"}

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        for obj in super().list(prefix, **pairs):
            yield dataclasses.replace(obj, path=prefix + obj.path[len(prefix) :].lower())


class WriteSizeWrong(MemoryDriver):
    """write returns an Object whose size is that of the previous content (0 for a new object)."""

    breaks = {"storager.result-types"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        old = self._objects.get(path)
        obj = super().write(path, data, **pairs)
        obj.size = len(old.data) if old else 0
        return obj


class NormalisesPaths(MemoryDriver):
    """Paths are stored NFC-normalised, so NFD and NFC spellings collide."""

    breaks = {"storager.path-exact", "storager.result-types"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        return super().write(unicodedata.normalize("NFC", path), data, **pairs)

    def read(self, path: str, **pairs: Any) -> bytes:
        return super().read(unicodedata.normalize("NFC", path), **pairs)


class ListLeaksSibling(MemoryDriver):
    """list drops the prefix's trailing slash, so listing a/b/ also yields a/bc."""

    breaks = {"storager.list-exact", "storager.result-types", "errors.envelope"}

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        return super().list(prefix.rstrip("/"), **pairs)


class ListTwice(MemoryDriver):
    """list yields the first object of every listing twice (a paging bug that repeats a page's last entry)."""

    breaks = {"storager.list-exact", "storager.path-exact"}

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        found = list(super().list(prefix, **pairs))
        return iter(found[:1] + found)


class EchoesCustomerKey(MemoryDriver):
    """write puts the SSE-C key itself in Object.system, next to its MD5."""

    breaks = {"errors.no-secret-echo"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        obj = super().write(path, data, **pairs)
        key = pairs.get("server_side_encryption_customer_key")
        if key:
            obj.system["server_side_encryption_customer_key"] = bytes(key).hex()
        return obj


class ContentTypeIgnored(MemoryDriver):
    """Declares content_type on write and drops it."""

    breaks = {"errors.pair-honoured"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        pairs.pop("content_type", None)
        return super().write(path, data, **pairs)


class SseS3NotRecorded(MemoryDriver):
    """Declares server_side_encryption and accepts it, but the object carries no trace of it."""

    breaks = {"errors.pair-honoured", "sse.s3-info", "sse.kms-write"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        pairs = {k: v for k, v in pairs.items() if k not in sse.SSE_WRITE_PAIRS - sse.SSE_C_PAIRS}
        return super().write(path, data, **pairs)


class PartialAppendOnLimit(MemoryDriver):
    """An over-limit write_append stores the bytes up to the limit, then raises RestrictionDissatisfied."""

    breaks = {"errors.refusal-harmless", "append.size-limit"}

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        limit = self._caps.limits["append_size_maximum"]
        if len(data) > limit:
            super().write_append(obj, data[:limit], **pairs)
        return super().write_append(obj, data, **pairs)


MANAGED = frozenset({"server_side_encryption", "server_side_encryption_aws_kms_key_id"})


class DeclaresSseOnRead(MemoryDriver):
    """Declares server_side_encryption and the KMS key id on read and stat, and ignores them there."""

    breaks = {"sse.managed-not-on-read"}

    def __init__(self) -> None:
        super().__init__()
        pairs = dict(self._caps.pairs)
        pairs["read"], pairs["stat"] = pairs["read"] | MANAGED, pairs["stat"] | MANAGED
        self._caps = dataclasses.replace(self._caps, pairs=pairs)

    def read(self, path: str, **pairs: Any) -> bytes:
        return super().read(path, **{k: v for k, v in pairs.items() if k not in MANAGED})

    def stat(self, path: str, **pairs: Any) -> Object:
        return super().stat(path, **{k: v for k, v in pairs.items() if k not in MANAGED})


class CommitTwiceKeyError(MemoryDriver):
    """A second commit_append of the same object raises a raw KeyError (a session dict popped twice)."""

    breaks = {"errors.taxonomy", "append.after-commit-safe"}

    def __init__(self) -> None:
        super().__init__()
        self._sessions: dict[int, None] = {}

    def create_append(self, path: str, **pairs: Any) -> Object:
        obj = super().create_append(path, **pairs)
        obj.handle = object()
        self._sessions[id(obj.handle)] = None
        return obj

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        super().commit_append(obj, **pairs)
        del self._sessions[id(obj.handle)]


class RangePastEndRaw(MemoryDriver):
    """A read whose range passes the end raises a raw IndexError."""

    breaks = {"errors.taxonomy", "errors.range-honoured"}

    def read(self, path: str, **pairs: Any) -> bytes:
        data = super().read(path, **{k: v for k, v in pairs.items() if k not in ("offset", "size")})
        end = int(pairs.get("offset", 0)) + int(pairs.get("size", len(data) - int(pairs.get("offset", 0))))
        if end > len(data) or int(pairs.get("offset", 0)) > len(data):
            raise IndexError("range out of bounds")
        return super().read(path, **pairs)


class RenamesAppend(MemoryDriver):
    """create_append puts the object under another run's folder (an upload id in the path)."""

    breaks = {
        "append.no-autorename",
        "append.create-offset-zero",
        "append.write-count",
        "append.content-order",
        "append.complete",
        "append.after-commit-safe",
        "append.offset-tracks",
        "append.size-limit",
        "append.pair-unsupported",
        "delete.append-unfinished",
        "delete.append-gone",
        "errors.restriction",
        "errors.refusal-harmless",
        "append.create-empty",
        "append.create-replaces",
    }

    def create_append(self, path: str, **pairs: Any) -> Object:
        obj = super().create_append(path, **pairs)
        head, _, rest = path.partition("/")
        obj.path = f"{head}-renamed/{rest}"
        return obj


class WrongEnvelopeEverywhere(MemoryDriver):
    """Every error reports the operation 'storage' instead of its own name."""

    breaks = {"errors.envelope", "errors.restriction"}

    def __getattribute__(self, name: str) -> Any:
        method = super().__getattribute__(name)
        if name not in ("write", "read", "stat", "delete", "list", "create_append", "write_append", "commit_append"):
            return method

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                result = method(*args, **kwargs)
                return list(result) if name == "list" else result
            except errors.StorageError as exc:
                exc.op = "storage"
                raise

        return wrapped


class WriteResetReportsSuccess(FaultyMemory):
    """A write whose connection is reset reports success with the object it meant to write, storing nothing."""

    breaks = {"errors.faults-surface", "errors.network", "errors.retry-succeeds"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        try:
            return super().write(path, data, **pairs)
        except errors.NetworkError:
            return Object(path=path, size=len(data))


#: Every driver of this module, for the self-test.
BROKEN = [
    cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, MemoryDriver) and hasattr(cls, "breaks") and cls is not FaultyMemory
]
