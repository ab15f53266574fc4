"""``python -m conformance.protocol module:Class``: serve a Python driver over the protocol on stdin and stdout."""

from __future__ import annotations

import importlib
import os
import sys

from conformance.protocol.server import serve

USAGE = "usage: python -m conformance.protocol module:Class  (the class is built with the start's options)"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or ":" not in argv[0]:
        print(USAGE, file=sys.stderr)
        return 2
    module_name, _, attr = argv[0].partition(":")
    if os.getcwd() not in sys.path:  # a driver module next to you is found, as `gspc` finds it
        sys.path.insert(0, os.getcwd())
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        print(f"conformance.protocol: cannot load {argv[0]}: {exc}", file=sys.stderr)
        return 2
    return serve(cls)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
