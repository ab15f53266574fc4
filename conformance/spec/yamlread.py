"""Read YAML defensively: size, encoding, anchors, tags, depth, node count and keys are checked per event."""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.spec.limits import DEFAULT_LIMITS, SpecLimits

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"
_CHUNK = 1 << 20  # UTF-8 is checked a MiB at a time, so a 50 MiB file never becomes a 200 MiB str
_KEY = object()  # a mapping frame waiting for its next key


class YamlProblem(Exception):
    """The first problem that stops reading a file, at a 1-based line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Document:
    """A file's data, the line of every value by its JSON pointer, its duplicate keys and its sha256."""

    data: Any
    lines: dict[tuple[Any, ...], int]
    sha256: str
    duplicates: tuple[tuple[int, str], ...] = ()

    def line(self, pointer: Iterable[Any]) -> int:
        """The 1-based line of the value at a pointer, or of its nearest existing parent."""
        parts = tuple(pointer)
        while parts and parts not in self.lines:
            parts = parts[:-1]
        return self.lines.get(parts, 1)


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    pointer: tuple[Any, ...]
    key: Any = _KEY


def read_document(path: Path, limits: SpecLimits = DEFAULT_LIMITS) -> Document:
    """Parse one YAML file within the limits; raise YamlProblem (or OSError) at the first thing refused."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:  # refused unread
        raise YamlProblem(1, f"file is {size} bytes, more than the limit of {limits.max_file_bytes}")
    with path.open("rb") as stream:
        raw = stream.read(limits.max_file_bytes + 1)  # a file growing while read is still capped
    if len(raw) > limits.max_file_bytes:
        raise YamlProblem(1, f"file is more than the limit of {limits.max_file_bytes} bytes")
    _check_utf8(raw)
    loader = LOADER(raw)
    try:
        data, lines, duplicates = _build(loader, limits)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        if "nesting depth" in str(exc.problem):  # PyYAML 6.0.4 stops deep nesting itself: the same refusal
            raise YamlProblem(line, f"nested more than {limits.max_depth} levels deep") from None
        raise YamlProblem(line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:
        line = raw.count(b"\n", 0, exc.position) + 1  # libyaml reports a byte offset
        raise YamlProblem(line, f"invalid YAML: {exc.reason} (character #x{exc.character:04x})") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return Document(data, lines, hashlib.sha256(raw).hexdigest(), tuple(duplicates))


def _check_utf8(raw: bytes) -> None:
    view = memoryview(raw)
    start = 0
    while start < len(raw):
        final = start + _CHUNK >= len(raw)
        try:
            _, used = codecs.utf_8_decode(view[start : start + _CHUNK], "strict", final)
        except UnicodeDecodeError as exc:
            at = start + exc.start
            column = at - (raw.rfind(b"\n", 0, at) + 1) + 1
            raise YamlProblem(
                raw.count(b"\n", 0, at) + 1, f"not UTF-8: byte 0x{raw[at]:02x} at column {column}"
            ) from None
        start += used


def _build(loader: Any, limits: SpecLimits) -> tuple[Any, dict[tuple[Any, ...], int], list[tuple[int, str]]]:
    """Data from the event stream, refusing each event before anything is built from it."""
    stack: list[_Frame] = []
    lines: dict[tuple[Any, ...], int] = {(): 1}
    duplicates: list[tuple[int, str]] = []
    root, nodes, documents = None, 0, 0
    while not isinstance(event := loader.get_event(), yaml.StreamEndEvent):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise YamlProblem(line, "more than one YAML document (---) in the file")
            continue
        if isinstance(event, yaml.StreamStartEvent | yaml.DocumentEndEvent):
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
            continue
        if isinstance(event, yaml.AliasEvent):
            raise YamlProblem(line, f"aliases (*{event.anchor}) are not allowed: write the value out")
        if event.anchor is not None:
            raise YamlProblem(line, f"anchors (&{event.anchor}) are not allowed: write the value out")
        if event.tag is not None:
            raise YamlProblem(line, f"tags ({event.tag}) are not allowed: write a plain value")
        nodes += 1
        if nodes > limits.max_nodes:
            raise YamlProblem(line, f"more than {limits.max_nodes} keys and values in the file")
        parent = stack[-1] if stack else None
        if parent is not None and isinstance(parent.container, dict) and parent.key is _KEY:
            parent.key = _key(event, line, limits)
            if parent.key in parent.container:
                duplicates.append((line, parent.key))
            continue
        if isinstance(event, yaml.ScalarEvent):
            value = _scalar(event, line, limits)
        elif len(stack) >= limits.max_depth:
            raise YamlProblem(line, f"nested more than {limits.max_depth} levels deep")
        else:
            value = {} if isinstance(event, yaml.MappingStartEvent) else []
        pointer = () if parent is None else parent.pointer + (_slot(parent),)
        lines[pointer] = line
        if parent is None:
            root = value
        elif isinstance(parent.container, dict):
            parent.container[parent.key] = value
            parent.key = _KEY
        else:
            parent.container.append(value)
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append(_Frame(value, pointer))
    return root, lines, duplicates


def _slot(frame: _Frame) -> Any:
    return frame.key if isinstance(frame.container, dict) else len(frame.container)


def _key(event: Any, line: int, limits: SpecLimits) -> str:
    if not isinstance(event, yaml.ScalarEvent):
        kind = "mapping" if isinstance(event, yaml.MappingStartEvent) else "list"
        raise YamlProblem(line, f"a mapping key must be a string, found a {kind}")
    kind = _kind(event)
    if kind != "str":
        raise YamlProblem(line, f"mapping key {event.value[:40]!r} is read as {kind}, not a string: quote it")
    return _scalar(event, line, limits)


def _kind(event: Any) -> str:
    return _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit).removeprefix(_TAG)


def _scalar(event: Any, line: int, limits: SpecLimits) -> Any:
    if len(event.value) > limits.max_scalar:
        raise YamlProblem(line, f"a value of {len(event.value)} characters, more than the limit of {limits.max_scalar}")
    kind = _kind(event)
    if kind not in ("int", "float", "bool", "null"):
        return event.value  # strings, and dates as written: schemas and waivers judge the text
    try:
        return getattr(_CONSTRUCTOR, f"construct_yaml_{kind}")(yaml.ScalarNode(_TAG + kind, event.value))
    except ValueError:  # an int of more digits than Python converts
        raise YamlProblem(line, f"{kind} {event.value[:40]!r}... cannot be read") from None
