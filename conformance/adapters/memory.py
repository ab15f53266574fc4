"""The reference driver: pure Python, in memory, passes every MUST and SHOULD clause."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance import errors
from conformance.adapters import sse
from conformance.driver import OPERATIONS, BaseDriver, Capabilities, Mode, Object

MiB = 1024 * 1024


@dataclass
class _Entry:
    data: bytearray
    mode: Mode
    content_type: str | None = None
    system: dict[str, Any] = field(default_factory=dict)
    key_md5: str | None = None  # set for SSE-C objects; reads must present the same key


class MemoryDriver(BaseDriver):
    """Objects in a dict, append that commits on every write, and S3-like SSE bookkeeping."""

    name = "memory"

    def __init__(self, append_size_maximum: int = 8 * MiB) -> None:
        self._objects: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._caps = Capabilities(
            operations=OPERATIONS,
            pairs={
                "write": {"content_type"} | sse.SSE_WRITE_PAIRS,
                "read": {"offset", "size"} | sse.SSE_C_PAIRS,
                "stat": sse.SSE_C_PAIRS,
            },
            limits={"append_size_maximum": int(append_size_maximum)},
        )

    def capabilities(self) -> Capabilities:
        return self._caps

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        key = sse.customer_key(pairs, "write", path, self.name)
        system = sse.managed_encryption(pairs, "write", path, self.name)
        entry = _Entry(bytearray(data), Mode.READ, pairs.get("content_type"), system)
        if key is not None:
            entry.key_md5 = sse.key_md5(key)
            system["server_side_encryption_customer_algorithm"] = "AES256"
            system["server_side_encryption_customer_key_md5"] = entry.key_md5
        with self._lock:
            self._objects[path] = entry
        return self._object(path, entry)

    def read(self, path: str, **pairs: Any) -> bytes:
        self.check_pairs("read", pairs, path)
        entry = self._unlocked(path, "read", pairs)
        offset = int(pairs.get("offset", 0))
        size = pairs.get("size")
        if offset < 0 or (size is not None and int(size) < 0):
            raise errors.RestrictionDissatisfied("offset and size must not be negative", op="read", path=path)
        end = len(entry.data) if size is None else offset + int(size)
        return bytes(entry.data[offset:end])

    def stat(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("stat", pairs, path)
        return self._object(path, self._unlocked(path, "stat", pairs))

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        with self._lock:
            self._objects.pop(path, None)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        with self._lock:
            found = sorted((p, e) for p, e in self._objects.items() if p.startswith(prefix))
        for path, entry in found:
            yield self._object(path, entry)

    def create_append(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("create_append", pairs, path)
        entry = _Entry(bytearray(), Mode.READ | Mode.APPEND)
        with self._lock:
            self._objects[path] = entry
        obj = self._object(path, entry)
        obj.append_offset = 0
        return obj

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self.check_pairs("write_append", pairs)
        self.check_append("write_append", obj)
        limit = self._caps.limits["append_size_maximum"]
        if len(data) > limit:
            raise errors.RestrictionDissatisfied(
                f"size limit exceeded: {len(data)} > append_size_maximum {limit}",
                op="write_append",
                driver=self.name,
            )
        with self._lock:
            entry = self._objects.setdefault(obj.path, _Entry(bytearray(), Mode.READ | Mode.APPEND))
            entry.data += data
            size = len(entry.data)
        obj.append_offset = obj.size = size
        return len(data)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        self.check_pairs("commit_append", pairs)
        self.check_append("commit_append", obj)

    def _unlocked(self, path: str, op: str, pairs: dict[str, Any]) -> _Entry:
        """The entry at path, after checking the SSE-C key it was written with."""
        key = sse.customer_key(pairs, op, path, self.name)
        with self._lock:
            entry = self._objects.get(path)
        if entry is None:
            raise errors.ObjectNotExist(op=op, path=path, driver=self.name)
        if entry.key_md5 is not None and (key is None or sse.key_md5(key) != entry.key_md5):
            reason = "wrong customer key" if key is not None else "object needs its customer key"
            raise errors.PermissionDenied(reason, op=op, path=path, driver=self.name)
        if entry.key_md5 is None and key is not None:
            raise errors.RestrictionDissatisfied("object is not encrypted with a customer key", op=op, path=path)
        return entry

    @staticmethod
    def _object(path: str, entry: _Entry) -> Object:
        return Object(
            path=path,
            mode=entry.mode,
            size=len(entry.data),
            content_type=entry.content_type,
            system=dict(entry.system),
        )
