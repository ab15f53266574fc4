"""A driver process that misbehaves once per run: the memory driver over the protocol, until its Nth read.

Options (in the start message): ``misbehave`` (crash, hang, garbage, or a bad frame: frame-negative,
frame-huge, frame-short, frame-garbage), ``marker`` (a file created when
it misbehaves, so a restarted process behaves), ``after`` (reads before it misbehaves: a read is
always a case's step, never its cleanup) and ``token`` (a secret it prints to stderr first, which no
output may carry). With ``--base64`` it declines binary frames in the start (and still sends one when told to).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from conformance.adapters.memory import MemoryDriver
from conformance.protocol import serve, wire

PROTOCOL = os.fdopen(os.dup(1), "wb")  # the protocol's stream; stdout proper goes to stderr
os.dup2(2, 1)
FRAMES = {  # what each bad frame puts on the stream before the real answer
    "frame-negative": b'{"seq":0,"result":{"$bytes":-1}}\n',
    "frame-huge": b'{"seq":0,"result":{"$bytes":%d}}\n' % (wire.MAX_FRAME + 1),
    "frame-short": b'{"seq":0,"result":{"$bytes":10}}\nabc',
    "frame-garbage": b'{"seq":0,"result":{"$bytes":3}}\nabcGARBAGE\n',
}


class Hostile(MemoryDriver):
    """The memory driver that, on its Nth read, crashes, hangs or writes garbage, once per marker."""

    def __init__(self, misbehave: str, marker: str, after: str = "5", token: str = "") -> None:
        super().__init__()
        self.misbehave, self.marker, self.left, self.token = misbehave, marker, int(after), token

    def read(self, path: str, **pairs: Any) -> bytes:
        self.left -= 1
        if self.left == 0 and self._first():
            self._misbehave()
        return super().read(path, **pairs)

    def _first(self) -> bool:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _misbehave(self) -> None:
        print(f"hostile driver: {self.misbehave} on purpose, token {self.token}", file=sys.stderr, flush=True)
        if self.misbehave == "crash":
            os._exit(70)
        if self.misbehave == "hang":
            time.sleep(600)
        if self.misbehave == "garbage":
            PROTOCOL.write(b"this is not the protocol\n")
            PROTOCOL.flush()
        if self.misbehave in FRAMES:
            PROTOCOL.write(FRAMES[self.misbehave])
            PROTOCOL.flush()
            if self.misbehave == "frame-short":
                os._exit(0)


if __name__ == "__main__":
    sys.exit(serve(Hostile, sys.stdin.buffer, PROTOCOL, frames="--base64" not in sys.argv))
