"""gsp-conformance: GSP specs as data, run by pytest against storage drivers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gsp-conformance")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
