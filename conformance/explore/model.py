"""The reference model: a dict of what each path holds, predicting every step as spec expectations.

Where the rules leave a behaviour to the implementation (reads before commit, writes after commit or
delete, two sessions on one path), the model does not guess: the path becomes unknown until a write
or delete defines it again, and steps on it are held to the invariants only. NFC and NFD spellings
are two objects (``storager.path-exact``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.engine import payloads

MiB = 1024 * 1024
LARGE = 5 * MiB + 1  # one byte over the usual multipart threshold
#: Flat, nested, a shared string prefix (a/b, a/bc), unicode, and one name in NFC and NFD. No path is a
#: folder of another: a file where a folder is wanted is a refusal the rules leave open.
POOL = ("x", "a/b", "a/bc", "d/e/f", "unicode-路径", "caf\u00e9", "cafe\u0301")
PREFIXES = ("", "a/", "a/b", "d/", "caf")
#: What a case states for a step the model cannot predict: success or any taxonomy error (the engine's
#: invariants judge the rest on every step).
ANYTHING = {"one_of": [{"label": "succeeded", "ok": True}, {"label": "refused", "error": "StorageError"}]}
ABSENT = "absent"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Payload:
    """Seeded bytes the spec language can name again: ``{random: size, seed: n}``."""

    size: int
    seed: int

    @property
    def data(self) -> bytes:
        return payloads.random_bytes(self.size, self.seed) if self.size else b""

    def expr(self) -> Any:
        """The data expression of a spec step."""
        if not self.size:
            return ""
        return {"random": "5MiB+1" if self.size == LARGE else self.size, "seed": self.seed}


def content(chunks: tuple[Payload, ...]) -> Any:
    """The data expression of chunks joined in order."""
    parts = [c.expr() for c in chunks if c.size]
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else {"concat": parts}


@dataclass(frozen=True)
class Known:
    """An object the model knows: its chunks, and the clauses that promised its bytes and its stat."""

    chunks: tuple[Payload, ...]
    read_clause: str
    stat_clause: str

    @property
    def size(self) -> int:
        return sum(c.size for c in self.chunks)


@dataclass(frozen=True)
class Check:
    """One expectation of a step (spec language) and the clause a miss contradicts."""

    clause: str
    expect: dict[str, Any]


@dataclass(eq=False)
class Handle:
    """An append session: the driver's object, the bytes appended, and whether it is still defined."""

    name: str
    path: str
    obj: Any = None
    chunks: list[Payload] = field(default_factory=list)
    open: bool = True

    def __repr__(self) -> str:
        return self.name


class Model:
    """What the pool holds; each operation returns the checks of its step and updates the state."""

    def __init__(self) -> None:
        self.paths: dict[str, Any] = dict.fromkeys(POOL, ABSENT)
        self.removed: set[str] = set()  # paths whose last defining step was a delete of something
        self.handles: list[Handle] = []

    def size(self, path: str) -> int | None:
        """The size of a known object, else None."""
        state = self.paths[path]
        return state.size if isinstance(state, Known) else None

    def write(self, path: str, payload: Payload) -> list[Check]:
        if path in self.removed:
            clause = "delete.write-after-delete"
        else:
            clause = "storager.roundtrip" if self.paths[path] is ABSENT else "storager.overwrite"
        self._define(path, Known((payload,), clause, clause))
        return [Check(clause, {})]

    def read(self, path: str, pairs: dict[str, int]) -> list[Check]:
        state = self.paths[path]
        if state is UNKNOWN:
            return []
        if state is ABSENT:
            return [Check(self._absent_clause(path), {"error": "ObjectNotExist"})]
        expected = content(state.chunks)
        if pairs:
            return [Check("errors.range-honoured", {"bytes": {"slice": expected, **pairs}})]
        return [Check(state.read_clause, {"bytes": expected})]

    def stat(self, path: str) -> list[Check]:
        state = self.paths[path]
        if state is UNKNOWN:
            return []
        if state is ABSENT:
            return [Check(self._absent_clause(path), {"error": "ObjectNotExist"})]
        expect: dict[str, Any] = {"size": state.size}
        if state.stat_clause == "append.complete":  # the clause that promises the read bit
            expect["mode"] = {"has": ["read"]}
        return [Check(state.stat_clause, expect)]

    def delete(self, path: str) -> list[Check]:
        state, pending, removed = self.paths[path], self._open_on(path), path in self.removed
        if pending:
            clause = "delete.append-unfinished"
        elif state is ABSENT:
            clause = "delete.repeatable" if removed else "delete.missing-ok"
        else:
            clause = "delete.removes"
        # delete during an unfinished append: whether the session can still bring the path back is open
        self._define(path, UNKNOWN if pending else ABSENT)
        if not pending and (removed or state is not ABSENT):
            self.removed.add(path)
        return [Check(clause, {})]

    def list(self, prefix: str) -> list[Check]:
        under = [p for p in POOL if p.startswith(prefix)]
        known = [p for p in under if isinstance(self.paths[p], Known)]
        committed = [p for p in known if self.paths[p].read_clause == "append.content-order"]
        # a commit that left no object is the commit's failure, whatever step shows it
        checks = [Check("append.content-order", {"paths": {"includes": committed}, "sizes": self._sizes(committed)})]
        checks = checks if committed else []
        sizes = {"sizes": self._sizes(known)} if known else {}
        if all(self.paths[p] is not UNKNOWN for p in under):
            return [*checks, Check("storager.list-exact", {"paths": {"exactly": known}, **sizes})]
        excludes = [p for p in under if self.paths[p] is ABSENT]
        paths = {k: v for k, v in (("includes", known), ("excludes", excludes)) if v}
        return [*checks, Check("storager.list-exact", {"paths": paths, **sizes} if paths else {})]

    def _sizes(self, paths: list[str]) -> dict[str, int]:
        return {p: self.paths[p].size for p in paths}

    def create_append(self, path: str) -> tuple[Handle, list[Check]]:
        existing = self.paths[path] is not ABSENT
        handle = Handle(f"h{len(self.handles) + 1}", path)
        self._define(path, UNKNOWN)  # before commit: readable, old, empty or absent, as the implementation does
        self.handles.append(handle)
        checks = [
            Check("append.create-existing-ok" if existing else "append.create-mode", {}),
            Check("append.create-mode", {"mode": {"has": ["append"]}}),
            Check("append.create-offset-zero", {"fields": {"append_offset": 0}}),
            Check("append.no-autorename", {"fields": {"path": path}}),
            Check("append.create-empty", {"fields": {"size": 0}}),
        ]
        return handle, checks

    def write_append(self, handle: Handle, payload: Payload) -> list[Check]:
        if not handle.open:
            self._spoil(handle.path)
            return []
        handle.chunks.append(payload)
        return [Check("append.write-count", {"value": payload.size})]

    def commit_append(self, handle: Handle) -> list[Check]:
        if not handle.open:  # after commit, delete or a rewrite of the path: implementation-defined
            self._spoil(handle.path)
            return []
        self._define(handle.path, Known(tuple(handle.chunks), "append.content-order", "append.complete"))  # ends it
        return [Check("append.content-order", {})]

    def refused_append(self) -> list[Check]:
        """write_append or commit_append of an object without the append bit: refused, nothing changes."""
        return [Check("append.mode-check", {"error": "ObjectModeInvalid"})]

    def _absent_clause(self, path: str) -> str:
        return "delete.removes" if path in self.removed else "errors.not-exist"

    def _open_on(self, path: str) -> bool:
        return any(h.open and h.path == path for h in self.handles)

    def _define(self, path: str, state: Any) -> None:
        """A defining step on ``path``: its state is set, earlier sessions on it end."""
        self.paths[path] = state
        self.removed.discard(path)
        self._close(path)

    def _spoil(self, path: str) -> None:
        """A session used past its defined life: the path and every session on it become unknown."""
        self.paths[path] = UNKNOWN
        self.removed.discard(path)
        self._close(path)

    def _close(self, path: str) -> None:
        for handle in self.handles:
            if handle.path == path:
                handle.open = False
