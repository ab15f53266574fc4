"""Drivers whose bug shows only after a sequence of operations: each passes any single operation alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conformance import errors
from conformance.adapters.memory import MemoryDriver
from conformance.driver import Mode, Object


class StaleReadCache(MemoryDriver):
    """Caches what read returned; delete drops the entry, an overwrite forgets to (write, read, write, read)."""

    name = "stale-read-cache"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._cache: dict[str, bytes] = {}

    def read(self, path: str, **pairs: Any) -> bytes:
        if path not in self._cache:
            self._cache[path] = super().read(path)
        data = self._cache[path]
        offset, size = int(pairs.get("offset", 0)), pairs.get("size")
        return data[offset : None if size is None else offset + int(size)]

    def delete(self, path: str, **pairs: Any) -> None:
        super().delete(path, **pairs)
        self._cache.pop(path, None)


class ListingTombstone(MemoryDriver):
    """Delete leaves a tombstone that a later write does not clear: list hides the rewritten object."""

    name = "listing-tombstone"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._tombstones: set[str] = set()

    def delete(self, path: str, **pairs: Any) -> None:
        super().delete(path, **pairs)
        self._tombstones.add(path)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        return (o for o in super().list(prefix, **pairs) if o.path not in self._tombstones)


class OffsetDrift(MemoryDriver):
    """Keeps the append position in the handle but advances it by the previous chunk: the second write lands early."""

    name = "offset-drift"

    def create_append(self, path: str, **pairs: Any) -> Object:
        obj = super().create_append(path, **pairs)
        obj.handle = {"position": 0, "last": 0}
        return obj

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self.check_pairs("write_append", pairs)
        self.check_append("write_append", obj)
        state = obj.handle if isinstance(obj.handle, dict) else {"position": 0, "last": 0}
        with self._lock:
            entry = self._objects.get(obj.path)
            if entry is None:
                raise errors.ObjectNotExist(op="write_append", driver=self.name)
            position = state["position"]
            entry.data[position : position + len(data)] = data
            state["position"] += state["last"]  # the bug: the size of the chunk before, not this one
            state["last"] = len(data)
        obj.size = len(entry.data)
        return len(data)


class LostCommit(MemoryDriver):
    """Buffers upload sessions until commit; a write to any path drops them all, and commit then commits nothing."""

    name = "lost-commit"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._sessions: dict[str, bytearray] = {}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self._sessions.clear()  # the bug: any write ends every session in flight
        return super().write(path, data, **pairs)

    def create_append(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("create_append", pairs, path)
        self._sessions[path] = bytearray()
        return Object(path=path, mode=Mode.APPEND, size=0, append_offset=0)

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self.check_pairs("write_append", pairs)
        self.check_append("write_append", obj)
        if obj.path in self._sessions:
            self._sessions[obj.path].extend(data)
        return len(data)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        self.check_pairs("commit_append", pairs)
        self.check_append("commit_append", obj)
        if obj.path in self._sessions:
            super().write(obj.path, bytes(self._sessions.pop(obj.path)))
