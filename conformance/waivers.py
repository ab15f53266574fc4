"""Known-issues files: per target, a failure listed with reason and link is waived, not hidden."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from conformance.spec.loader import read_yaml


@dataclass(frozen=True)
class Waiver:
    """One known issue: which case or clause, why, where it is tracked, until when."""

    target: str
    reason: str
    link: str
    file: str
    spec: str | None = None
    case: str | None = None
    clause: str | None = None
    expires: dt.date | None = None

    def matches(self, target: str, spec: str, case: str, clause: str) -> bool:
        return (
            self.target == target
            and self.spec in (None, spec)
            and self.case in (None, case)
            and self.clause in (None, clause)
        )

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and self.expires < (today or dt.date.today())

    def as_record(self) -> dict[str, str | None]:
        return {
            "reason": self.reason,
            "link": self.link,
            "file": self.file,
            "expires": self.expires.isoformat() if self.expires else None,
        }


def load_waivers(path: Path) -> list[Waiver]:
    """Waivers of a known-issues file; SpecError names the file and line of every problem."""
    data, _ = read_yaml(path, "known-issues")
    return [
        Waiver(
            target=data["target"],
            reason=entry["reason"],
            link=entry["link"],
            file=str(path),
            spec=entry.get("spec"),
            case=entry.get("case"),
            clause=entry.get("clause"),
            expires=dt.date.fromisoformat(entry["expires"]) if "expires" in entry else None,
        )
        for entry in data["waivers"]
    ]


def bundled_known_issues(target: str) -> Path | None:
    """The known-issues file shipped for a bundled target, if any."""
    path = Path(str(files("conformance.adapters"))) / "known-issues" / f"{target}.yaml"
    return path if path.is_file() else None


def find_waiver(waivers: list[Waiver], target: str, spec: str, case: str, clause: str) -> Waiver | None:
    """The first waiver that covers a case of a target."""
    return next((w for w in waivers if w.matches(target, spec, case, clause)), None)
