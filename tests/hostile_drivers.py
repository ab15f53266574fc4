"""Hostile drivers: each is the memory driver with one operation returning or raising what no driver should.

A hostile driver must come out as that driver's failure of its cases, never as a crash or a harness
error, and every record and terminal line about it stays bounded. ``does`` is a text the failure's
``actual`` contains; ``spec`` is the bundled spec whose cases reach the misbehaving operation.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from conformance import errors
from conformance.adapters.memory import MemoryDriver
from conformance.driver import Mode, Object

FLOOD = 20 * 1024 * 1024  # characters printed by the flooding drivers, once per process


class Hostile(MemoryDriver):
    """Base of the hostile drivers: the memory driver, and what a run of ``spec`` must show."""

    does = ""
    spec = "delete"


# --- wrong return types -------------------------------------------------------------------------


class WriteReturnsNone(Hostile):
    """write stores the object and returns None."""

    does = "write returned NoneType, not an Object"

    def write(self, path: str, data: bytes, **pairs: Any) -> Any:
        super().write(path, data, **pairs)


class WriteReturnsStr(Hostile):
    """write returns the path as a str."""

    does = "write returned str, not an Object"

    def write(self, path: str, data: bytes, **pairs: Any) -> Any:
        super().write(path, data, **pairs)
        return path


class WriteReturnsDict(Hostile):
    """write returns a dict shaped like an Object."""

    does = "write returned dict, not an Object"

    def write(self, path: str, data: bytes, **pairs: Any) -> Any:
        obj = super().write(path, data, **pairs)
        return {"path": obj.path, "mode": int(obj.mode), "size": obj.size}


class ReadReturnsStr(Hostile):
    """read returns the content decoded as text."""

    does = "read returned str"
    spec = "errors"  # delete reads only in SHOULD cases, and a SHOULD failure exits 0

    def read(self, path: str, **pairs: Any) -> Any:
        return super().read(path, **pairs).decode("utf-8", "replace")


class ReadReturnsInt(Hostile):
    """read returns the content's length."""

    does = "read returned int"
    spec = "errors"  # delete reads only in SHOULD cases, and a SHOULD failure exits 0

    def read(self, path: str, **pairs: Any) -> Any:
        return len(super().read(path, **pairs))


class StatReturnsDict(Hostile):
    """stat returns a dict shaped like an Object."""

    does = "stat returned dict, not an Object"
    spec = "sse"  # delete stats an existing object only in a SHOULD case

    def stat(self, path: str, **pairs: Any) -> Any:
        obj = super().stat(path, **pairs)
        return {"path": obj.path, "mode": int(obj.mode), "size": obj.size}


class ListReturnsNone(Hostile):
    """list returns None instead of an iterator."""

    does = "TypeError"  # the tracker iterates the result: what surfaces is the TypeError of iterating None
    spec = "errors"

    def list(self, prefix: str, **pairs: Any) -> Any:
        return None


class ListReturnsInt(Hostile):
    """list returns a count instead of an iterator."""

    does = "TypeError"
    spec = "errors"

    def list(self, prefix: str, **pairs: Any) -> Any:
        return 3


class ListRaisesMidway(Hostile):
    """list yields one object, then its generator raises a raw error."""

    does = "raw builtins.RuntimeError escaped the driver: listing broke after one object"
    spec = "errors"

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        yield Object(path=prefix + "first", mode=Mode.READ, size=0)
        raise RuntimeError("listing broke after one object")


class ListYieldsNonObjects(Hostile):
    """list yields paths and dicts instead of Objects."""

    does = "list yielded str, not an Object at position 0"
    spec = "errors"

    def list(self, prefix: str, **pairs: Any) -> Iterator[Any]:
        yield prefix + "a"
        yield {"path": prefix + "b"}


# --- results and errors that cannot be printed --------------------------------------------------


class Unprintable:
    """A value whose repr and str raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    def __str__(self) -> str:
        raise RuntimeError("str refused")


class WriteReturnsUnprintable(Hostile):
    """write returns a value whose repr and str raise."""

    does = "write returned Unprintable, not an Object"

    def write(self, path: str, data: bytes, **pairs: Any) -> Any:
        super().write(path, data, **pairs)
        return Unprintable()


class UnprintableError(errors.Unexpected):
    """A taxonomy error whose str raises."""

    def __str__(self) -> str:
        raise RuntimeError("str refused")


class RawUnprintableError(Exception):
    """A raw error whose str raises something that is not even an Exception."""

    def __str__(self) -> str:
        raise SystemExit("str refused")


class ErrorStrRaises(Hostile):
    """write raises a taxonomy error whose str raises."""

    does = "UnprintableError: <unprintable UnprintableError: str() raised RuntimeError>"

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        raise UnprintableError(op="write", path=path, driver=self.name)


class RawErrorStrRaises(Hostile):
    """write raises a raw error whose str raises SystemExit."""

    does = "RawUnprintableError escaped the driver: <unprintable RawUnprintableError: str() raised SystemExit>"

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        raise RawUnprintableError()


# --- nonsensical modes --------------------------------------------------------------------------


class _BadMode(Hostile):
    mode: Any = None

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        obj = super().write(path, data, **pairs)
        obj.mode = self.mode
        return obj


class ModeNegative(_BadMode):
    """write returns an Object whose mode is -1 (which IntFlag would read as every bit)."""

    does = "write returned an Object whose mode -1 has bits outside the GSP modes"
    mode = -1


class ModeHuge(_BadMode):
    """write returns an Object whose mode is a 200-bit number."""

    does = "write returned an Object whose mode of 201 bits has bits outside the GSP modes"
    mode = 1 << 200


class ModeString(_BadMode):
    """write returns an Object whose mode is a string."""

    does = "write returned an Object whose mode is str, not an int"
    mode = "rw"


class ModeUndefinedBits(_BadMode):
    """write returns an Object whose mode has a bit GSP does not define."""

    does = "write returned an Object whose mode 130 has bits outside the GSP modes"
    mode = 128 | Mode.READ


# --- BaseExceptions raised by a driver ----------------------------------------------------------


class CustomBaseException(BaseException):
    """A BaseException that is neither an Exception nor one of Python's own."""


class _Raises(Hostile):
    raised: type[BaseException] = BaseException

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        raise self.raised("the driver raised this itself")


class RaisesKeyboardInterrupt(_Raises):
    """write raises KeyboardInterrupt, though nobody pressed Ctrl-C."""

    does = "raw builtins.KeyboardInterrupt escaped the driver"
    raised = KeyboardInterrupt


class RaisesSystemExit(_Raises):
    """write raises SystemExit."""

    does = "raw builtins.SystemExit escaped the driver"
    raised = SystemExit


class RaisesGeneratorExit(_Raises):
    """write raises GeneratorExit."""

    does = "raw builtins.GeneratorExit escaped the driver"
    raised = GeneratorExit


class RaisesCustomBaseException(_Raises):
    """write raises a BaseException subclass of its own."""

    does = "raw hostile_drivers.CustomBaseException escaped the driver"
    raised = CustomBaseException


class DeleteRaisesKeyboardInterrupt(Hostile):
    """delete raises KeyboardInterrupt, so the case's cleanup meets it too."""

    does = "raw builtins.KeyboardInterrupt escaped the driver"

    def delete(self, path: str, **pairs: Any) -> None:
        raise KeyboardInterrupt("the driver raised this itself")


# --- hostile messages ---------------------------------------------------------------------------


class SurrogateMessage(Hostile):
    """write raises an error whose message holds lone surrogates (unencodable as UTF-8)."""

    does = "Unexpected: write: memory"

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        raise errors.Unexpected("bad \udcff\ud800 text", op="write", path=path, driver=self.name)


class HugeMessage(Hostile):
    """write raises an error with a 10 MB message."""

    does = "[truncated: "

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        raise errors.Unexpected("x" * (10 * 1024 * 1024), op="write", driver=self.name)


class AnsiMessage(Hostile):
    """write raises an error whose message moves the cursor, colours the terminal and rings the bell."""

    does = "Unexpected: write: memory"

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        message = "\x1b[2J\x1b[31mPASSED\x1b[0m\r\x07\x00\x9b1A\nforged line"
        raise errors.Unexpected(message, op="write", path=path, driver=self.name)


# --- output floods ------------------------------------------------------------------------------


class _Flood(Hostile):
    """delete of a missing path prints 20 MB (the first time in a process) and raises ObjectNotExist."""

    does = "ObjectNotExist: delete: memory"
    stream = "stdout"
    flooded = False

    def delete(self, path: str, **pairs: Any) -> None:
        if path not in self._objects:
            if not type(self).flooded:
                type(self).flooded = True
                getattr(sys, self.stream).write("flood " * (FLOOD // 6) + "\n")
            raise errors.ObjectNotExist(op="delete", path=path, driver=self.name)
        super().delete(path, **pairs)


class FloodStdout(_Flood):
    """Floods stdout with 20 MB."""


class FloodStderr(_Flood):
    """Floods stderr with 20 MB."""

    stream = "stderr"


HOSTILE = [
    cls
    for cls in list(globals().values())
    if isinstance(cls, type)
    and issubclass(cls, Hostile)
    and cls.__doc__
    and not cls.__name__.startswith("_")
    and cls is not Hostile
]
