"""Deliberately broken drivers: each is the memory driver with one rule broken.

``breaks`` names the exact clauses the bundled specs must fail for the driver, no more, no less.
``FaultyMemory`` is memory behind a simulated network (the test backend ``memory.faulty``,
registered by ``tests/gspc_test_backends.dist-info``, hands the harness its injector); it breaks
nothing and is the control for the fault cases, which the broken fault drivers below subclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from conformance import errors
from conformance.adapters import sse
from conformance.adapters.memory import MemoryDriver
from conformance.backends import Endpoint
from conformance.driver import Capabilities, Mode, Object


def _without_pairs(caps: Capabilities, names: frozenset[str]) -> Capabilities:
    """The same declaration with some pairs removed from every operation."""
    return dataclasses.replace(caps, pairs={op: p - names for op, p in caps.pairs.items()})


# --- delete -------------------------------------------------------------------------------------


class DeleteMissingRaises(MemoryDriver):
    """Delete of a path that never existed raises ObjectNotExist."""

    breaks = {"delete.missing-ok", "delete.missing-parent-ok"}

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self._seen.add(path)
        return super().write(path, data, **pairs)

    def create_append(self, path: str, **pairs: Any) -> Object:
        self._seen.add(path)
        return super().create_append(path, **pairs)

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        if path not in self._seen:
            raise errors.ObjectNotExist(op="delete", path=path, driver=self.name)
        super().delete(path, **pairs)


class DeleteTwiceRaises(MemoryDriver):
    """A second delete of the same path raises ObjectNotExist."""

    breaks = {"delete.repeatable", "delete.append-unfinished"}

    def __init__(self) -> None:
        super().__init__()
        self._deleted: set[str] = set()

    def delete(self, path: str, **pairs: Any) -> None:
        if path in self._deleted and path not in self._objects:
            raise errors.ObjectNotExist(op="delete", path=path, driver=self.name)
        super().delete(path, **pairs)
        self._deleted.add(path)


class DeleteKeepsObject(MemoryDriver):
    """Delete reports success but leaves a non-empty object in place."""

    breaks = {
        "delete.append-gone",
        "delete.removes",
        "delete.repeatable",
        "errors.not-exist",
        "errors.taxonomy",
        "sse.delete-needs-no-key",
        "storager.list-exact",
    }

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        entry = self._objects.get(path)
        if entry is None or not entry.data:
            super().delete(path, **pairs)


class DeletePairsIgnored(MemoryDriver):
    """Delete silently ignores pairs it does not declare."""

    breaks = {"delete.no-pairs", "errors.envelope", "sse.refused-when-undeclared"}

    def delete(self, path: str, **pairs: Any) -> None:
        super().delete(path)


# --- append -------------------------------------------------------------------------------------


class AppendModeMissing(MemoryDriver):
    """create_append returns an object without the append bit (it still appends to it)."""

    breaks = {"append.create-mode"}

    def create_append(self, path: str, **pairs: Any) -> Object:
        obj = super().create_append(path, **pairs)
        obj.mode = Mode.READ
        return obj

    def check_append(self, op: str, obj: Object) -> None:
        entry = self._objects.get(obj.path)
        if entry is None or Mode.APPEND not in entry.mode:
            super().check_append(op, obj)


class AppendOffsetUnset(MemoryDriver):
    """create_append leaves append_offset unset."""

    breaks = {"append.create-offset-zero"}

    def create_append(self, path: str, **pairs: Any) -> Object:
        obj = super().create_append(path, **pairs)
        obj.append_offset = None
        return obj


class CreateAppendRefusesExisting(MemoryDriver):
    """create_append over a plainly written object fails as if the object may not exist."""

    breaks = {"append.create-existing-ok", "append.create-mode", "append.create-replaces"}

    def create_append(self, path: str, **pairs: Any) -> Object:
        entry = self._objects.get(path)
        if entry is not None and Mode.APPEND not in entry.mode:
            raise errors.RestrictionDissatisfied("object exists", op="create_append", path=path)
        return super().create_append(path, **pairs)


class CreateAppendKeepsOld(MemoryDriver):
    """create_append over an existing object keeps its content and appends after it."""

    breaks = {"append.create-replaces"}

    def create_append(self, path: str, **pairs: Any) -> Object:
        old = self._objects.get(path)
        obj = super().create_append(path, **pairs)
        if old is not None:
            self._objects[path].data[:] = old.data
        return obj


class WriteAppendCountWrong(MemoryDriver):
    """write_append returns one more than the bytes it appended."""

    breaks = {
        "append.after-commit-safe",
        "append.offset-tracks",
        "append.write-count",
        "delete.append-gone",
    }

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        return super().write_append(obj, data, **pairs) + 1


class AppendOverwrites(MemoryDriver):
    """write_append replaces the content instead of appending to it."""

    breaks = {
        "append.after-commit-safe",
        "append.complete",
        "append.content-order",
        "append.offset-tracks",
    }

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        count = super().write_append(obj, data, **pairs)
        self._objects[obj.path].data[:] = data
        return count


class WriteAppendIgnoresMode(MemoryDriver):
    """write_append appends to any object, whatever its mode."""

    breaks = {"append.mode-check", "errors.mode-invalid", "errors.envelope"}

    def check_append(self, op: str, obj: Object) -> None:
        if op != "write_append":
            super().check_append(op, obj)


class CommitIgnoresMode(MemoryDriver):
    """commit_append accepts any object, whatever its mode."""

    breaks = {"append.mode-check", "errors.mode-invalid", "errors.envelope"}

    def check_append(self, op: str, obj: Object) -> None:
        if op != "commit_append":
            super().check_append(op, obj)


class AppendLimitIgnored(MemoryDriver):
    """Declares append_size_maximum but appends more."""

    breaks = {"append.size-limit", "errors.restriction"}

    def __init__(self) -> None:
        super().__init__(append_size_maximum=4096)
        self._enforced = MemoryDriver(append_size_maximum=1 << 40)._caps

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        declared, self._caps = self._caps, self._enforced
        try:
            return super().write_append(obj, data, **pairs)
        finally:
            self._caps = declared


class WriteLimitIgnored(MemoryDriver):
    """Declares write_size_maximum but writes more."""

    breaks = {"errors.restriction"}

    def __init__(self) -> None:
        super().__init__()
        self._caps = dataclasses.replace(self._caps, limits={**self._caps.limits, "write_size_maximum": 4096})


class AppendPairsIgnored(MemoryDriver):
    """create_append, write_append and commit_append silently ignore undeclared pairs."""

    breaks = {"append.pair-unsupported", "errors.envelope", "sse.refused-when-undeclared"}

    def create_append(self, path: str, **pairs: Any) -> Object:
        return super().create_append(path)

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        return super().write_append(obj, data)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        super().commit_append(obj)


# --- errors -------------------------------------------------------------------------------------


class RawKeyError(MemoryDriver):
    """Read of a missing path lets a raw KeyError escape, like an SDK exception."""

    breaks = {
        "errors.envelope",
        "errors.not-exist",
        "errors.taxonomy",
        "sse.c-key-invalid",
    }

    def read(self, path: str, **pairs: Any) -> bytes:
        if path not in self._objects:
            raise KeyError(path)
        return super().read(path, **pairs)


class WrongEnvelope(MemoryDriver):
    """stat's ObjectNotExist loses its path."""

    breaks = {"errors.envelope"}

    def stat(self, path: str, **pairs: Any) -> Object:
        try:
            return super().stat(path, **pairs)
        except errors.ObjectNotExist as exc:
            exc.path = None
            raise


class ReadPairsIgnored(MemoryDriver):
    """read silently drops pairs it does not declare."""

    breaks = {"errors.pair-unsupported", "sse.managed-not-on-read"}

    def read(self, path: str, **pairs: Any) -> bytes:
        accepted = self._caps.pairs["read"]
        return super().read(path, **{k: v for k, v in pairs.items() if k in accepted})


class HiddenCreateAppend(MemoryDriver):
    """Declares create_append absent, but it works."""

    breaks = {"append.absent-refused", "errors.envelope"}

    def __init__(self) -> None:
        super().__init__()
        self._caps = dataclasses.replace(self._caps, operations=self._caps.operations - {"create_append"})


class HiddenList(MemoryDriver):
    """Declares list absent, but it works."""

    breaks = {"errors.not-implemented"}

    def __init__(self) -> None:
        super().__init__()
        self._caps = dataclasses.replace(self._caps, operations=self._caps.operations - {"list"})


class ReadRangeIgnored(MemoryDriver):
    """read declares offset and size but returns the whole object."""

    breaks = {"errors.range-honoured"}

    def read(self, path: str, **pairs: Any) -> bytes:
        pairs.pop("offset", None)
        pairs.pop("size", None)
        return super().read(path, **pairs)


class LoosePairRefused(MemoryDriver):
    """Declares the loose_pair feature but still refuses unknown pairs."""

    breaks = {"errors.loose-pair"}

    def __init__(self) -> None:
        super().__init__()
        self._caps = dataclasses.replace(self._caps, features=frozenset({"loose_pair"}))


class StatLosesSize(MemoryDriver):
    """stat reports no size."""

    breaks = {
        "append.complete",
        "append.create-empty",
        "append.create-replaces",
        "append.no-autorename",
        "delete.one-object",
        "sse.c-stat",
        "sse.refused-when-undeclared",
        "sse.s3-info",
        "storager.overwrite",
        "storager.roundtrip",
    }

    def stat(self, path: str, **pairs: Any) -> Object:
        obj = super().stat(path, **pairs)
        obj.size = None
        return obj


# --- network faults -----------------------------------------------------------------------------


class SimulatedProxy:
    """A stand-in for the fault proxy: faults the requests of one case until cleared."""

    def __init__(self) -> None:
        self.fault: dict[str, Any] | None = None
        self.left: int | None = None
        self.case: str | None = None

    def inject(self, kind: str, times: int | None = None, **options: Any) -> None:
        self.fault, self.left, self.case = {"kind": kind, **options}, times, None

    def clear(self) -> None:
        self.fault = None

    def take(self, path: str) -> dict[str, Any] | None:
        """The fault for a request on ``path``, if one is active for its case."""
        if self.fault is None:
            return None
        case = "/".join(path.split("/")[:4])  # a fault never outlives its case, even a failed one
        if self.case is None:
            self.case = case
        elif case != self.case:
            self.fault = None
            return None
        fault = self.fault
        if self.left is not None:
            self.left -= 1
            if self.left <= 0:
                self.fault = None
        return fault


class FaultyNetwork:
    """The test backend ``memory.faulty``: a simulated proxy for the driver, and as its injector for the harness."""

    service = "memory"
    default = True
    per_process = True  # the simulation lives in the driver's process

    def __init__(self, location: str | None = None) -> None:
        self.proxy = SimulatedProxy()

    def unavailable(self) -> str | None:
        return None

    def start(self, options: dict[str, Any]) -> Endpoint:
        return Endpoint(options={"network": self.proxy}, faults=self.proxy)

    def close(self) -> None:
        self.proxy.clear()


class FaultyMemory(MemoryDriver):
    """Memory behind a simulated HTTP fault proxy, classifying faults as GSP-127 and #145 ask."""

    breaks: set[str] = set()
    service = "memory"

    def __init__(self, network: SimulatedProxy | None = None) -> None:
        super().__init__()
        self.network = network

    def classify(self, fault: dict[str, Any], context: dict[str, Any]) -> errors.StorageError:
        """The taxonomy error for a fault, as a driver maps its SDK's exception."""
        if fault["kind"] in ("reset", "stall"):
            return errors.NetworkError(f"connection {fault['kind']}", **context)
        status, code = fault.get("status"), fault.get("code", "")
        if status == 403:
            return errors.PermissionDenied(code, **context)
        if status == 429 or code == "SlowDown":
            return errors.RequestThrottled(code, retry_after=fault.get("retry_after"), **context)
        if status >= 500:
            return errors.ServiceInternal(code, **context)
        return errors.Unexpected(code, **context)

    def _request(self, op: str, path: str, reported: str | None) -> None:
        fault = self.network.take(path) if self.network is not None else None
        if fault is not None:
            raise self.classify(fault, {"op": op, "path": reported, "driver": self.name})

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self._request("write", path, path)
        return super().write(path, data, **pairs)

    def read(self, path: str, **pairs: Any) -> bytes:
        self._request("read", path, path)
        return super().read(path, **pairs)

    def stat(self, path: str, **pairs: Any) -> Object:
        self._request("stat", path, path)
        return super().stat(path, **pairs)

    def delete(self, path: str, **pairs: Any) -> None:
        self._request("delete", path, path)
        super().delete(path, **pairs)

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self._request("list", prefix, prefix)
        return super().list(prefix, **pairs)

    def create_append(self, path: str, **pairs: Any) -> Object:
        self._request("create_append", path, path)
        return super().create_append(path, **pairs)

    def write_append(self, obj: Object, data: bytes, **pairs: Any) -> int:
        self._request("write_append", obj.path, None)
        return super().write_append(obj, data, **pairs)

    def commit_append(self, obj: Object, **pairs: Any) -> None:
        self._request("commit_append", obj.path, None)
        super().commit_append(obj, **pairs)


class ResetReadsAsMissing(FaultyMemory):
    """A reset or stalled read or stat is reported as ObjectNotExist."""

    breaks = {"errors.faults-surface", "errors.network"}

    def classify(self, fault: dict[str, Any], context: dict[str, Any]) -> errors.StorageError:
        if fault["kind"] != "status" and context["op"] in ("read", "stat"):
            return errors.ObjectNotExist(**context)
        return super().classify(fault, context)


class NetworkNotRetryable(FaultyMemory):
    """Transport failures are reported as Unexpected, not as a retryable NetworkError."""

    breaks = {"errors.network"}

    def classify(self, fault: dict[str, Any], context: dict[str, Any]) -> errors.StorageError:
        if fault["kind"] != "status":
            return errors.Unexpected(f"connection {fault['kind']}", **context)
        return super().classify(fault, context)


class ThrottleAsInternal(FaultyMemory):
    """Throttling (429, 503 SlowDown) is reported as ServiceInternal."""

    breaks = {"errors.retryable"}

    def classify(self, fault: dict[str, Any], context: dict[str, Any]) -> errors.StorageError:
        if fault.get("status") in (429, 503):
            return errors.ServiceInternal(fault.get("code", ""), **context)
        return super().classify(fault, context)


class ForbiddenAsMissing(FaultyMemory):
    """An HTTP 403 is reported as ObjectNotExist."""

    breaks = {"errors.permission-denied", "delete.errors-surface"}

    def classify(self, fault: dict[str, Any], context: dict[str, Any]) -> errors.StorageError:
        if fault.get("status") == 403:
            return errors.ObjectNotExist(**context)
        return super().classify(fault, context)


class DeleteSwallowsFaults(FaultyMemory):
    """Delete swallows every backend error, not only the not-exist class."""

    breaks = {"delete.errors-surface"}

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        try:
            super().delete(path, **pairs)
        except errors.StorageError:
            return


class PartialWriteOnFault(FaultyMemory):
    """A write cut by a fault leaves the first half of the new content behind."""

    breaks = {"errors.faults-surface", "errors.retry-succeeds"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        try:
            return super().write(path, data, **pairs)
        except errors.NetworkError:
            MemoryDriver.write(self, path, data[: len(data) // 2], **pairs)
            raise


# --- server-side encryption ---------------------------------------------------------------------


class SseIgnoredUndeclared(MemoryDriver):
    """Declares no SSE pairs, and silently drops them instead of refusing them."""

    breaks = {"sse.refused-when-undeclared"}

    def __init__(self) -> None:
        super().__init__()
        self._caps = _without_pairs(self._caps, sse.SSE_WRITE_PAIRS)

    @staticmethod
    def _plain(pairs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in pairs.items() if not k.startswith("server_side_encryption")}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        return super().write(path, data, **self._plain(pairs))

    def read(self, path: str, **pairs: Any) -> bytes:
        return super().read(path, **self._plain(pairs))

    def stat(self, path: str, **pairs: Any) -> Object:
        return super().stat(path, **self._plain(pairs))

    def delete(self, path: str, **pairs: Any) -> None:
        super().delete(path, **self._plain(pairs))

    def create_append(self, path: str, **pairs: Any) -> Object:
        return super().create_append(path, **self._plain(pairs))


class SseCKeyIgnored(MemoryDriver):
    """Declares SSE-C and validates the key, but stores plaintext that reads without it."""

    breaks = {"sse.c-key-required", "sse.c-stat", "sse.c-stat-needs-key"}

    @staticmethod
    def _keyless(op: str, path: str, pairs: dict[str, Any]) -> dict[str, Any]:
        sse.customer_key(pairs, op, path, "broken")
        return {k: v for k, v in pairs.items() if k not in sse.SSE_C_PAIRS}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        return super().write(path, data, **self._keyless("write", path, pairs))

    def read(self, path: str, **pairs: Any) -> bytes:
        return super().read(path, **self._keyless("read", path, pairs))

    def stat(self, path: str, **pairs: Any) -> Object:
        return super().stat(path, **self._keyless("stat", path, pairs))


class SseS3Garbled(MemoryDriver):
    """An SSE-S3 object reads back as its 'ciphertext'."""

    breaks = {"sse.s3-write"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        if pairs.get("server_side_encryption") == "AES256":
            data = bytes(b ^ 0x5A for b in data)
        return super().write(path, data, **pairs)


class SseCGarbled(MemoryDriver):
    """An SSE-C object read with its key returns the 'ciphertext'."""

    breaks = {"sse.c-roundtrip"}

    def read(self, path: str, **pairs: Any) -> bytes:
        data = super().read(path, **pairs)
        if "server_side_encryption_customer_key" in pairs:
            data = bytes(b ^ 0x5A for b in data)
        return data


class SseCWeakKey(MemoryDriver):
    """Accepts SSE-C keys of any length, padding or cutting them to 32 bytes."""

    breaks = {"sse.c-key-invalid"}

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        if "server_side_encryption_customer_algorithm" in pairs:
            key = bytes(pairs.get("server_side_encryption_customer_key") or b"")
            pairs["server_side_encryption_customer_key"] = key.ljust(32, b"\0")[:32]
        return super().write(path, data, **pairs)


#: Every driver of this module, for the self-test.
BROKEN = [
    cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, MemoryDriver) and hasattr(cls, "breaks")
]
