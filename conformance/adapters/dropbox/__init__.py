"""The dropbox driver on the official SDK; its emulator is a backend (conformance.backends.dropbox)."""

from conformance.adapters.dropbox.driver import DropboxDriver

__all__ = ["DropboxDriver"]
