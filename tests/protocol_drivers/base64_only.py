"""The memory driver served as a driver written before binary frames: it declines them, so payloads go as base64."""

import sys

from conformance.adapters.memory import MemoryDriver
from conformance.protocol import serve

if __name__ == "__main__":
    sys.exit(serve(MemoryDriver, frames=False))
