"""The dropbox driver and a local emulator of the Dropbox API subset it uses."""

from conformance.adapters.dropbox.driver import DropboxDriver

__all__ = ["DropboxDriver"]
