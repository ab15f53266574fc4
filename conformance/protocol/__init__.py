"""The driver protocol: a driver in any language, in its own process, speaking JSON lines on stdin and stdout.

``ExecDriver`` (``exec:CMD``) is the harness's end; ``serve(driver)`` puts a Python driver at the
other end. The protocol is written down in ``docs/protocol.md`` and ``specs/schema/protocol.schema.json``.
"""

from conformance.protocol.client import ExecDriver, ProcessFailure, UntypedError, exec_driver
from conformance.protocol.server import serve
from conformance.protocol.wire import VERSION

__all__ = ["VERSION", "ExecDriver", "ProcessFailure", "UntypedError", "exec_driver", "serve"]
