"""The ``python`` of a forked xdist worker: ``python -I -S forkserver_launcher.py NAME -u -c BOOTSTRAP``.

It hands its stdin, stdout and stderr, directory and environment to the fork server (``conformance.forkserver``),
which forks the worker with them, and exits with the worker's code when the worker ends. When the server does not
answer, or answers that it cannot fork, it becomes the plain worker itself (``python -u -c BOOTSTRAP``). Built-in
modules only: it starts in 10 ms, where the ``socket`` module alone would take as long again.
"""

import _signal
import _socket
import os
import sys


def main(argv: list[str]) -> None:
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # the worker gets Ctrl-C; this ends when the worker does
    answers = _Lines()
    try:
        server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        server.connect(f"\0{argv[1]}")  # the server's abstract socket
        streams = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))  # C ints, as SCM_RIGHTS carries them
        # the worker takes this process's directory and environment, as the plain worker would
        where = b"\0".join([os.getcwdb(), *(name + b"=" + value for name, value in os.environb.items())])
        message = len(where).to_bytes(8, "big") + where
        server.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, streams)])
        answer = answers.read(server)
    except OSError:
        answer = b""
    if not answer.startswith(b"forked "):
        os.execv(sys.executable, [sys.executable, *argv[2:]])
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the worker alone holds the pipes now: execnet sees them close when it ends
    os.dup2(devnull, 1)
    try:
        code = answers.read(server).strip()
    except OSError:
        code = b""
    sys.exit(int(code) if code.isdigit() else 1)


class _Lines:
    """Lines read from a socket, a part of the next one kept."""

    def __init__(self) -> None:
        self.pending = b""

    def read(self, sock: _socket.socket) -> bytes:
        while b"\n" not in self.pending and (chunk := sock.recv(256)):
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line


if __name__ == "__main__":
    main(sys.argv)
