"""Dropbox backends: the bundled emulator on 127.0.0.1 (HTTPS, a test CA) and live Dropbox.

An endpoint gives a Dropbox driver the bundled driver's options: ``token`` (or ``app_key``,
``refresh_token``, ``app_secret``), ``host`` and ``ca_file`` on the emulator, and a short ``timeout``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from conformance.backends import LIST_PAGE_SIZE, BackendError, Endpoint

REQUEST_SIZE_MAXIMUM = 150 * 1024 * 1024  # Dropbox's largest body for one upload request
EMULATOR_TIMEOUT = 2.0  # seconds; the emulator answers in milliseconds, so only a fault takes longer
CREDENTIALS_HINT = (
    "set DROPBOX_TOKEN, or DROPBOX_APP_KEY and DROPBOX_REFRESH_TOKEN (and DROPBOX_APP_SECRET unless the app uses PKCE)"
)
INSTALL = "pip install 'gsp-conformance[dropbox]'"


def _missing(*modules: str) -> str | None:
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"package {', '.join(absent)} not installed: {INSTALL}" if absent else None


class Emulator:
    """The bundled emulator, served from a thread of the process that starts it (``dropbox@emulator``)."""

    service = "dropbox"
    default = True
    per_process = False

    def __init__(self, location: str | None = None) -> None:
        self.emulator: Any = None  # the running DropboxEmulator, for tests that look inside

    def unavailable(self) -> str | None:
        return _missing("dropbox", "trustme")

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        from conformance.backends.dropbox.emulator import DropboxEmulator

        try:
            limit = int(options.get("request_size_maximum", REQUEST_SIZE_MAXIMUM))
        except (TypeError, ValueError):
            raise BackendError("option request_size_maximum must be a whole number of bytes") from None
        emulator = DropboxEmulator(upload_size_maximum=limit, page_size=LIST_PAGE_SIZE)
        self.emulator = emulator.start()
        return Endpoint(
            options={"token": emulator.token, "host": emulator.host, "ca_file": emulator.ca_file}
            | {"timeout": EMULATOR_TIMEOUT},
            upstream=("127.0.0.1", emulator.port),
            address={"host": "{address}"},
            tls_cert=emulator.cert_file,
            ca_file=emulator.ca_file,
            error_dialect="conformance.backends.dropbox.emulator:error_document",
            list_page_size=LIST_PAGE_SIZE,
        )

    def close(self) -> None:
        emulator, self.emulator = self.emulator, None
        if emulator is not None:
            emulator.stop()


class Live:
    """Dropbox itself, with credentials from the environment (``dropbox@live``)."""

    service = "dropbox"
    default = False
    per_process = True  # nothing to start, and the credentials stay in the environment, never in a file

    def __init__(self, location: str | None = None) -> None:
        return None

    def unavailable(self) -> str | None:
        if not credentials():
            return _missing("dropbox") or f"no Dropbox credentials in the environment: {CREDENTIALS_HINT}"
        return _missing("dropbox")

    def start(self, options: Mapping[str, Any]) -> Endpoint:
        found = credentials()
        if not found:
            raise BackendError(f"no Dropbox credentials in the environment: {CREDENTIALS_HINT}")
        return Endpoint(options=found)

    def close(self) -> None:
        return None


def credentials() -> dict[str, str]:
    """Driver options from the environment: a token, or an app key with a refresh token."""
    env = os.environ
    if env.get("DROPBOX_TOKEN"):
        return {"token": env["DROPBOX_TOKEN"]}
    if env.get("DROPBOX_APP_KEY") and env.get("DROPBOX_REFRESH_TOKEN"):
        found = {"app_key": env["DROPBOX_APP_KEY"], "refresh_token": env["DROPBOX_REFRESH_TOKEN"]}
        if env.get("DROPBOX_APP_SECRET"):
            found["app_secret"] = env["DROPBOX_APP_SECRET"]
        return found
    return {}
