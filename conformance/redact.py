"""The one redactor every output passes: it learns secrets, scrubs their forms, and cleans records for writing.

Secrets are learned before any driver is opened: environment variables and options whose names
look secret, the SSE-C keys of the specs, and whatever the user adds. Each secret is scrubbed in
every textual form a driver, SDK or serializer may produce (raw, base64, base64url, hex, URL, repr,
JSON and XML escapes), alone or inside a larger value, by one precompiled trie-shaped pattern.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from conformance.engine import payloads
from conformance.engine.safe import rep
from conformance.spec.model import substitute

if TYPE_CHECKING:
    from conformance.spec.model import Spec

#: Names (environment variables, driver options, pairs, record keys) whose values are secret,
#: case-insensitively. KEY counts only at the end (api_key, access_key, secret_access_key,
#: account_key, customer_key, APIKEY) or as ACCESS_KEY (AWS_ACCESS_KEY_ID): ``key_prefix`` and
#: ``kms_key_id`` are not secret, and masking them would break reopening a target for cleanup.
#: AUTH does not count in AUTHOR (GIT_AUTHOR_NAME is a name, not a credential).
SECRET_NAME = re.compile(r"token|secret|passw(?:or)?d|credential|auth(?!or)|access_?key|keys?$", re.IGNORECASE)
#: Values shorter than this are not learned: short values (``true``, ``basic``, a port) are not
#: secrets or are too weak to protect, and scrubbing them would mangle every report. Secret-named
#: pairs and record keys are masked whatever their length.
MIN_SECRET_LENGTH = 8
#: Characters of one string in a record; longer text is cut here with its length noted.
MAX_TEXT = 4096
#: Nesting, and values per record, beyond which a record's data is left out (cycles end here too).
MAX_DEPTH = 32
MAX_VALUES = 100_000
MASK = "***"
REMEMBERED = 10_000  # cleaned strings (and keys) a Redactor keeps per pattern, each of at most MAX_TEXT characters
_INT_LIMIT = 1 << 64  # larger ints become text: JSON readers lose their precision
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone surrogates cannot be encoded as UTF-8
_END = ""  # trie marker: a form ends at this node
_CHUNK = 1 << 20  # characters read at a time by scrub_file


@lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a name (environment variable, option, pair or key) holds a secret value."""
    return SECRET_NAME.search(name) is not None


class Redactor:
    """Remembers secret values and scrubs every textual form of them from strings, records and files."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._known: set[bytes] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._stale = False
        self._shortest = self._longest = 0
        self._plain_below = MAX_TEXT + 1  # an ASCII text shorter than this holds no form and needs no cut
        # records repeat their strings (clause texts, titles, run ids) and keys: cleaned once per pattern
        self._cleaned: dict[str, str] = {}
        self._keys: dict[str, tuple[str, bool]] = {}  # key -> (the key cleaned, whether its value is secret)
        self._lock = threading.Lock()  # a secret may be learned (backends starting) while output is scrubbed
        for name, value in (os.environ if environ is None else environ).items():
            if secret_name(name):
                self.add(value)

    def add(self, value: str | bytes) -> None:
        """Treat a value as secret: every form of it is scrubbed from now on."""
        if len(value) < MIN_SECRET_LENGTH:
            return
        # environment values carry undecodable bytes as surrogates: encode them back to those bytes
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        if raw in self._known:
            return
        forms = _forms(raw, value if isinstance(value, str) else _text_of(raw))
        with self._lock:
            self._known.add(raw)
            self._forms = self._forms | forms
            self._stale = True  # the pattern is rebuilt on the next scrub

    def learn_options(self, options: Mapping[str, object]) -> None:
        """Learn the values of secret-named driver options (``api_key=...``, ``token=...``)."""
        for name, value in options.items():
            if isinstance(value, str | bytes) and secret_name(str(name)):
                self.add(value)

    def learn_specs(self, specs: Iterable[Spec]) -> None:
        """Learn every secret-named step argument of the specs (the SSE-C keys), in every expansion of params."""
        for spec in specs:
            for case in spec.cases:
                expansions = [{n: v for n, (_, v) in e.items()} for e in case.expansions()]
                for step in case.steps:
                    for name, value in step.args.items():
                        if secret_name(str(name)) and isinstance(value, str | dict):
                            for params in expansions:
                                self._learn_data(substitute(value, params))

    def _learn_data(self, expression: Any) -> None:
        try:
            self.add(payloads.evaluate(expression))
        except (ValueError, TypeError):  # sized by a driver limit or malformed (lint's job): learned when used
            return

    def scrub(self, text: str) -> str:
        """The text with every known secret form replaced by ``***``."""
        pattern = self._compiled()
        if pattern is None or len(text) < self._shortest:
            return text
        return pattern.sub(MASK, text)

    def pairs(self, pairs: Mapping[str, object]) -> dict[str, object]:
        """Pairs fit for a record: secret-named values masked (and remembered for later scrubbing)."""
        shown: dict[str, object] = {}
        for key, value in pairs.items():
            if value is not None and secret_name(key):
                if isinstance(value, str | bytes):
                    self.add(value)
                shown[key] = MASK
            else:
                shown[key] = value
        return shown

    def clean(self, value: Any) -> Any:
        """A JSON-able deep copy safe to write anywhere: scrubbed, secret-named keys masked, strings bounded
        at MAX_TEXT characters and UTF-8 encodable; anything else becomes a repr that cannot raise."""
        self._compiled()
        return self._copy(value, MAX_DEPTH, [MAX_VALUES])

    def _copy(self, value: Any, depth: int, budget: list[int]) -> Any:
        kind = type(value)  # exact types first: they are nearly every value, and type() cannot be faked
        if kind is dict:
            return self._dict(value, depth, budget)
        if kind is list or kind is tuple:
            return self._list(value, depth, budget)
        if kind is str:
            return self._text(value)
        if value is None or kind is bool:
            return value
        if kind is int:
            return value if -_INT_LIMIT < value < _INT_LIMIT else self._text(rep(value))
        if kind is float:
            return value if math.isfinite(value) else repr(value)  # NaN is not JSON: a browser refuses it
        return self._copy(_plain(value), depth, budget)

    # _dict and _list inline the common values (short ASCII text, None, bools, small ints, plain containers):
    # a call per value would be most of the cost of a record

    def _dict(self, value: dict[Any, Any], depth: int, budget: list[int]) -> Any:
        budget[0] -= len(value)
        if depth == 0 or budget[0] < 0:
            return f"[dict of {len(value)} items left out: nested too deep or too large]"
        below, keys, depth, copy = self._plain_below, self._keys, depth - 1, {}
        for key, item in value.items():
            known = keys.get(key) if type(key) is str else None
            name, secret = known if known is not None else self._key(key)
            kind = type(item)
            if item is None:
                copy[name] = None
            elif secret:
                copy[name] = MASK
            elif kind is str:
                copy[name] = item if len(item) < below and item.isascii() else self._text(item)
            elif kind is bool or (kind is int and -_INT_LIMIT < item < _INT_LIMIT):
                copy[name] = item
            elif kind is dict:
                copy[name] = self._dict(item, depth, budget)
            elif kind is list:
                copy[name] = self._list(item, depth, budget)
            else:
                copy[name] = self._copy(item, depth, budget)
        return copy

    def _list(self, value: list[Any] | tuple[Any, ...], depth: int, budget: list[int]) -> Any:
        budget[0] -= len(value)
        if depth == 0 or budget[0] < 0:
            return f"[{type(value).__name__} of {len(value)} items left out: nested too deep or too large]"
        below, depth = self._plain_below, depth - 1
        return [
            item
            if type(item) is str and len(item) < below and item.isascii()
            else self._dict(item, depth, budget)
            if type(item) is dict
            else self._copy(item, depth, budget)
            for item in value
        ]

    def _key(self, key: Any) -> tuple[str, bool]:
        """A dict key as a record shows it, and whether the value under it is secret (remembered for str keys)."""
        name = self._text(key if type(key) is str else rep(key))
        known = (name, secret_name(name))
        if type(key) is str and len(key) <= MAX_TEXT:
            _remember(self._keys, key, known)
        return known

    def _text(self, text: str) -> str:
        """Scrubbed, cut at MAX_TEXT (a secret across the cut is masked whole), lone surrogates replaced."""
        if len(text) < self._plain_below and text.isascii():
            return text
        done = self._cleaned.get(text)
        if done is not None:
            return done
        done = self._cut(text) if len(text) > MAX_TEXT else self.scrub(text)
        if not done.isascii():
            done = _SURROGATE.sub("\ufffd", done)
        if len(text) <= MAX_TEXT:
            _remember(self._cleaned, text, done)
        return done

    def _cut(self, text: str) -> str:
        # scrub only the kept head, plus enough to see a secret that starts in it and runs past the cut
        pattern = self._compiled()
        window = text[: MAX_TEXT + self._longest]
        pieces, position = [], 0
        for match in pattern.finditer(window) if pattern else ():
            if match.start() >= MAX_TEXT:
                break
            pieces += (window[position : match.start()], MASK)
            position = match.end()
        pieces.append(window[position:MAX_TEXT])
        return "".join(pieces) + f" ... [truncated: {len(text)} chars]"

    def scrub_file(self, path: Path) -> bool:
        """Mask every secret form in a file, streaming (any size, any bytes kept as they were); True if changed."""
        pattern = self._compiled()
        if pattern is None:
            return False
        overlap = self._longest - 1  # a form starting in the last ``overlap`` characters may continue in the next chunk
        temp = path.with_name(path.name + ".gspc-scrub")
        changed = False
        # surrogateescape round-trips any bytes, so binary files and bad UTF-8 come back unchanged but for masks
        with (path.open(encoding="utf-8", errors="surrogateescape", newline="") as source,
              temp.open("w", encoding="utf-8", errors="surrogateescape", newline="") as target):  # fmt: skip
            carry = ""
            while chunk := source.read(_CHUNK):
                text = carry + chunk
                safe, position = len(text) - overlap, 0
                for match in pattern.finditer(text):
                    if match.start() >= safe:
                        break
                    target.write(text[position : match.start()] + MASK)
                    position, changed = match.end(), True
                keep = max(position, safe)
                target.write(text[position:keep])
                carry = text[keep:]
            rest = pattern.sub(MASK, carry)
            changed = changed or rest != carry
            target.write(rest)
        if changed:
            os.chmod(temp, path.stat().st_mode)
            os.replace(temp, path)
        else:
            temp.unlink()
        return changed

    def _compiled(self) -> re.Pattern[str] | None:
        if self._stale:
            with self._lock:
                if self._stale:
                    self._pattern = re.compile(_trie(self._forms))
                    self._shortest, self._longest = min(map(len, self._forms)), max(map(len, self._forms))
                    self._plain_below = min(self._shortest, MAX_TEXT + 1)
                    self._cleaned.clear()
                    self._keys.clear()
                    self._stale = False
        return self._pattern


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    """Keep a cleaned value, bounded: a cache of REMEMBERED entries starts again."""
    if len(cache) >= REMEMBERED:
        cache.clear()
    cache[key] = value


def scrub_tree(folder: Path, redactor: Redactor) -> int:
    """Mask secrets in every file under a folder (junit.xml, allure-results, index.html, ...); the count changed.

    Symbolic links are skipped: a link may point outside the folder, which is not ours to rewrite.
    """
    changed = 0
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if not path.is_symlink() and redactor.scrub_file(path):
                changed += 1
    return changed


def _text_of(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _forms(raw: bytes, text: str | None) -> set[str]:
    """Every textual form in which a secret (its bytes, and its text if it has one) may be written out."""
    forms = {raw.hex(), raw.hex().upper(), repr(raw)[2:-1], quote(raw, safe=""), quote(raw), quote_plus(raw)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        # Inside a larger encoded value the secret starts at any byte of a 3-byte group: the groups
        # made of its bytes alone are the same whatever surrounds it.
        for shift in (0, 1, 2):
            shifted = encode(bytes(shift) + raw).decode()
            forms.add(shifted[4 if shift else 0 : 4 * ((shift + len(raw)) // 3)])
    if text is not None:
        forms |= {text, escape(text), escape(text, quote=False)}
    for _ in range(2):  # a repr or JSON string of a message that already holds an escaped form escapes it again
        forms |= {shown for form in forms for shown in (repr(form)[1:-1], json.dumps(form)[1:-1],
                                                        json.dumps(form, ensure_ascii=False)[1:-1])}  # fmt: skip
    return forms


def _trie(words: Iterable[str]) -> str:
    """A regex matching any of the words, shaped as a trie: one pass, longest form first, whatever their count."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[_END] = {}
    return _branches(root)


def _branches(node: dict[str, dict]) -> str:
    branches = []
    for char, child in sorted(node.items()):
        if char == _END:
            continue
        chain = [char]
        while len(child) == 1 and _END not in child:  # a run of single children is one literal (no deep recursion)
            ((char, child),) = child.items()
            chain.append(char)
        branches.append(re.escape("".join(chain)) + _branches(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if _END in node else body


def _plain(value: Any) -> Any:
    """A subclass of str, int, float, dict, list or tuple as its base type, through the base's own methods
    (a hostile override never runs); anything else as its repr."""
    kind = type(value)
    for base, convert in _BASES:
        if issubclass(kind, base):
            return convert(value)
    return rep(value)


_BASES = (
    (str, str.__str__),
    (int, int.__int__),  # bool cannot be subclassed, so this is an int proper
    (float, float.__float__),
    (dict, lambda value: dict(dict.items(value))),
    (list, lambda value: list(list.__iter__(value))),
    (tuple, lambda value: list(tuple.__iter__(value))),
)
