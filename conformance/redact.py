"""Keep secrets out of records, logs and reports: secret pairs, credentials from the environment."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping

SECRET_PAIR = re.compile(r"(customer_key|token|secret|password|credential)$")
SECRET_ENV = re.compile(r"(TOKEN|SECRET|PASSWORD|ACCESS_KEY|API_KEY|CREDENTIAL)")
MIN_SECRET_LENGTH = 8  # shorter values would scrub ordinary words
MASK = "***"


class Redactor:
    """Remembers secret values and scrubs every textual form of them from strings."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._forms: set[str] = set()
        for name, value in (os.environ if environ is None else environ).items():
            if SECRET_ENV.search(name.upper()):
                self.add(value)

    def add(self, value: str | bytes) -> None:
        """Treat a value as secret: its text, base64 and hex forms are scrubbed from now on."""
        raw = value.encode() if isinstance(value, str) else bytes(value)
        if len(raw) < MIN_SECRET_LENGTH:
            return
        forms = {base64.b64encode(raw).decode(), raw.hex(), repr(raw)[2:-1]}
        if isinstance(value, str):
            forms.add(value)
        self._forms |= forms
        self._pattern = None

    def scrub(self, text: str) -> str:
        """The text with every known secret replaced by ``***``."""
        if not self._forms or not text:
            return text
        if getattr(self, "_pattern", None) is None:
            ordered = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return self._pattern.sub(MASK, text)

    def pairs(self, pairs: Mapping[str, object]) -> dict[str, object]:
        """Pairs fit for a record: secret values masked (and remembered for later scrubbing)."""
        shown: dict[str, object] = {}
        for key, value in pairs.items():
            if SECRET_PAIR.search(key) and value is not None:
                if isinstance(value, str | bytes):
                    self.add(value)
                shown[key] = MASK
            else:
                shown[key] = value
        return shown
