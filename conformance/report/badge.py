"""Badges for a verdict: a shields-style SVG and a shields.io endpoint JSON."""

from __future__ import annotations

from html import escape
from typing import Any

LABEL = "GSP conformance"

#: verdict -> (message, shields colour name, hex for the SVG)
STYLES = {
    "conformant": ("conformant", "brightgreen", "#4c1"),
    "conformant-with-warnings": ("conformant, warnings", "yellow", "#dfb317"),
    "non-conformant": ("non-conformant", "red", "#e05d44"),
    "incomplete": ("incomplete", "orange", "#fe7d37"),
    "not-applicable": ("not applicable", "lightgrey", "#9f9f9f"),
    "not-run": ("not run", "lightgrey", "#9f9f9f"),
    "refuses-correctly": ("not implemented, refuses correctly", "blue", "#007ec6"),
}


def message(verdict: str, scope: list[str] | None = None) -> str:
    """A verdict's badge text; ``scope`` names the specs it holds for when others were only refused."""
    text = STYLES[verdict][0]
    return f"{text} on {', '.join(scope)}" if scope else text


def endpoint(verdict: str, label: str = LABEL, scope: list[str] | None = None) -> dict[str, Any]:
    """The shields.io endpoint document (https://shields.io/badges/endpoint-badge) for a verdict."""
    return {"schemaVersion": 1, "label": label, "message": message(verdict, scope), "color": STYLES[verdict][1]}


def svg(verdict: str, label: str = LABEL, subject: str | None = None, scope: list[str] | None = None) -> str:
    """A flat two-part badge in the shields layout: grey label, coloured message; the subject in its tooltip."""
    text, colour = message(verdict, scope), STYLES[verdict][2]
    left, right = _width(label), _width(text)
    total = left + right
    tip = escape(f"{label}: {text}" + (f" ({subject})" if subject else ""))
    key = f"gspc-{verdict}"  # ids unique per verdict, so badges inlined in one page keep their own shapes
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{tip}">
<title>{tip}</title>
<linearGradient id="{key}-s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="{key}-r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#{key}-r)"><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/><rect width="{total}" height="20" fill="url(#{key}-s)"/></g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">
<text x="{left / 2}" y="14" fill="#010101" fill-opacity=".3">{escape(label)}</text><text x="{left / 2}" y="13">{escape(label)}</text>
<text x="{left + right / 2}" y="14" fill="#010101" fill-opacity=".3">{escape(text)}</text><text x="{left + right / 2}" y="13">{escape(text)}</text>
</g>
</svg>
"""  # noqa: E501


def _width(text: str) -> int:
    """Approximate Verdana 11px width (about 7 px a character) plus padding."""
    return round(len(text) * 6.8) + 12
