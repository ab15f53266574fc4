"""One driver process: a line and frame to its stdin, a line and frame back by a deadline, its stderr's tail kept."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

MAX_LINE = 256 * 1024 * 1024  # an answer carrying a 190 MiB payload fits; a flood without a newline does not
TAIL = 2048  # bytes of stderr kept for a failure's message (the record bounds text at 4 KiB)
CHUNK = 1 << 20
NEWLINE = ord("\n")
GRACE = 2.0  # seconds a stopped process has to exit before it is killed


_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None  # loaded here: the child after fork only calls it
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: killed when the harness process dies without stopping it (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ChannelError(Exception):
    """The process exited, hung or wrote more than a line may hold; the message says which."""


class Channel:
    """A started driver process and the bytes it has written but the caller has not taken yet."""

    def __init__(self, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        # a session of its own: Ctrl-C at the terminal is the harness's to handle, and a kill reaches
        # what the command started too (``go run`` runs the driver as its child)
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._in, self._out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        for fd in (self._in, self._out):  # a megabyte per system call instead of 64 KiB (Linux only)
            with contextlib.suppress(AttributeError, OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, CHUNK)
        os.set_blocking(self._in, False)  # a driver that stops reading must not block the harness past its deadline
        self._buffer = bytearray()
        self._deadline, self._timeout = 0.0, 0.0  # the exchange in progress's
        self._tail = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain, name="gspc-driver-stderr", daemon=True)
        self._reader.start()

    def exchange(self, parts: Sequence[bytes], timeout: float) -> bytes:
        """Send a line (and the frame after it, if any); return the next line the process writes, without its newline.

        The deadline also bounds the frame that may follow the answer (``frame()``).
        """
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        for part in parts:
            self._send(part)
        return self._receive()

    def frame(self, size: int) -> bytes:
        """The ``size`` bytes after the answer's line, and the newline that ends them (read as they come: one copy)."""
        parts = [bytes(self._buffer[: size + 1])]  # what came with the line
        del self._buffer[: size + 1]
        have = len(parts[0])
        try:
            while have <= size:
                if self._wait([self._out], [])[1]:
                    parts.append(os.read(self._out, min(CHUNK, size + 1 - have)))
                    if not parts[-1]:
                        raise ChannelError(self._gone("closed its stdout"))
                    have += len(parts[-1])
        except ChannelError as exc:
            raise ChannelError(f"sent {have} of a {size}-byte frame, then {exc}") from None
        last = parts.pop()
        if last[-1] != NEWLINE:
            raise ChannelError(f"wrote byte 0x{last[-1]:02x} after a {size}-byte frame, not the newline that ends it")
        parts.append(last[:-1])
        return b"".join(parts)

    def _send(self, data: bytes) -> None:
        view, sent = memoryview(data), 0
        while sent < len(view):
            writable, readable = self._wait([self._out], [self._in])
            if readable:  # keep reading what it writes meanwhile, or both ends could wait on a full pipe
                self._read()
            if writable:
                try:
                    sent += os.write(self._in, view[sent : sent + CHUNK])
                except BlockingIOError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    raise ChannelError(self._gone("stopped reading its stdin")) from None

    def _receive(self) -> bytes:
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > MAX_LINE:
                raise ChannelError(f"wrote more than {MAX_LINE} bytes without ending the line")
            scanned = len(self._buffer)
            if self._wait([self._out], [])[1]:
                self._read()

    def _wait(self, reads: list[int], writes: list[int]) -> tuple[bool, bool]:
        """(stdin writable, stdout readable), waiting until one is or the exchange's deadline passes."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelError(f"gave no answer within {self._timeout:g} s")
        readable, writable, _ = select.select(reads, writes, [], remaining)
        if not readable and not writable:
            raise ChannelError(f"gave no answer within {self._timeout:g} s")
        return bool(writable), bool(readable)

    def _read(self) -> None:
        chunk = os.read(self._out, CHUNK)
        if not chunk:
            raise ChannelError(self._gone("closed its stdout"))
        self._buffer += chunk

    def _gone(self, what: str) -> str:
        """How the process went away: its exit status if it has one within a second."""
        try:
            code = self.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            return what
        if code < 0:
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def _drain(self) -> None:
        """Keep the last TAIL bytes of stderr (a driver that floods stderr must not fill the pipe and stall)."""
        stream = self.proc.stderr
        with contextlib.suppress(OSError, ValueError):
            for chunk in iter(lambda: stream.read1(CHUNK), b""):
                with self._lock:
                    self._tail += chunk
                    del self._tail[:-TAIL]

    def stderr(self, wait: float = 0.5) -> str:
        """The end of what the process wrote to stderr, once it has ended or ``wait`` seconds have passed."""
        self._reader.join(wait)
        with self._lock:
            return self._tail.decode("utf-8", "replace")

    def stop(self, line: bytes) -> None:
        """Send the goodbye ``line`` and end the input; kill the process if it has not exited after a grace period."""
        with contextlib.suppress(OSError):
            os.write(self._in, line)  # best effort: end of input says the same
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(GRACE)
        self.kill()  # also whatever it started and left behind

    def kill(self) -> None:
        """Kill the process and everything it started, and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(GRACE)
        self._close()

    def _close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._reader.join(0.5)
        with contextlib.suppress(OSError):
            self.proc.stderr.close()
