"""Driver references as a user writes them (``module:Class``, ``path/file.py:Class``, ``path/file.py``), and
a near-miss suggestion for every name gspc refuses."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from conformance.driver import DriverError

FORMS = "module:Class, path/to/file.py:Class or path/to/file.py"


def suggest(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean X?)"`` for the closest of ``choices`` (case-insensitive), or ``""``."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[found[0]]}?)" if found else ""


def load_class(ref: str, value: str, installed: Iterable[str]) -> type:
    """The class ``value`` names (``ref`` as the user gave it); DriverError saying where gspc looked otherwise."""
    head, sep, attr = value.rpartition(":")
    if sep and head.endswith(".py"):
        return _pick(ref, _import_file(ref, head), attr, by_file=True)
    if not sep and value.endswith(".py"):
        return _pick(ref, _import_file(ref, value), None, by_file=True)
    if ":" in value:
        module_name, _, attr = value.partition(":")
        return _pick(ref, _import_module(ref, module_name, attr), attr, by_file=False)
    names = sorted(installed)
    hint = suggest(ref, names)
    if not hint and Path(f"{ref}.py").is_file():  # a module next to the user, named without its class
        classes = driver_classes(_import_file(ref, f"{ref}.py"))
        hint = f" (did you mean {ref}:{classes[0].__name__}?)" if classes else ""
    raise DriverError(f"unknown driver {ref!r}{hint}; installed: {', '.join(names) or 'none'}; or give {FORMS}")


def driver_classes(module: ModuleType) -> list[type]:
    """The classes a module defines that look like drivers (they have ``capabilities()``), in file order."""
    found = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
             and callable(getattr(v, "capabilities", None))]  # fmt: skip
    return sorted(found, key=_line)


def declared_at(cls: type) -> str:
    """Where a class is defined, ``file:line`` (relative to the working folder when inside it), or its module."""
    try:
        file, line = inspect.getsourcefile(cls), inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return cls.__module__
    return f"{_shown(file)}:{line}" if file else cls.__module__


def _pick(ref: str, module: ModuleType, attr: str | None, by_file: bool) -> type:
    classes = driver_classes(module)
    names = [c.__name__ for c in classes]
    file = _shown(module.__file__ or module.__name__)
    where = file if by_file else f"module {module.__name__}"
    if attr is None:
        if len(classes) == 1:
            return classes[0]
        if not classes:
            raise DriverError(f"driver {ref!r}: {where} defines no driver class (a class with capabilities())")
        raise DriverError(f"driver {ref!r}: {where} defines several driver classes ({', '.join(names)}); "
                          f"name one: {ref}:{names[0]}")  # fmt: skip
    found = getattr(module, attr, None)
    if found is None:
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise DriverError(f"driver {ref!r}: {where} has no {attr}{suggest(attr, names)}; "
                          f"driver classes in {file}: {shown or 'none'}")  # fmt: skip
    return found


def _import_module(ref: str, name: str, attr: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise DriverError(_failed(ref, name, exc)) from None
        near = suggest(name, _modules_here())
        last = name.rpartition(".")[2]
        raise DriverError(
            f"driver {ref!r}: no module {name} in {os.getcwd()} or on PYTHONPATH{near}; run gspc from the folder "
            f"that holds {last}.py (cd), add that folder to PYTHONPATH, or name the file: path/to/{last}.py:{attr}"
        ) from None
    except Exception as exc:  # the module exists but does not import: its own error, with its line
        raise DriverError(_failed(ref, name, exc)) from None


def _import_file(ref: str, given: str) -> ModuleType:
    path = Path(given).expanduser()
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not path.is_file():
        near = suggest(path.name, (p.name for p in path.parent.glob("*.py"))) if path.parent.is_dir() else ""
        raise DriverError(f"driver {ref!r}: no file {path}{near}; a relative path starts in {os.getcwd()}")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) and Path(loaded.__file__).resolve() == path:
        return loaded
    if loaded is not None or not name.isidentifier():  # another module has the name: keep both apart
        name = f"gspc_driver_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    if str(path.parent) not in sys.path:  # the driver's own imports find its neighbours, as `python file.py` does
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DriverError(_failed(ref, _shown(str(path)), exc)) from None
    return module


def _failed(ref: str, what: str, exc: BaseException) -> str:
    """One line for a driver module that raised while importing, naming the file and line that raised."""
    if isinstance(exc, SyntaxError) and exc.filename:
        at = f"{_shown(exc.filename)}:{exc.lineno}"
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        at = f"{_shown(frames[-1].filename)}:{frames[-1].lineno}" if frames else what
    return f"driver {ref!r}: importing {what} failed: {type(exc).__name__}: {exc} ({at})"


def _modules_here() -> list[str]:
    return [p.stem for p in Path.cwd().glob("*.py")]


def _line(cls: type) -> int:
    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return 0


def _shown(file: str) -> str:
    try:
        relative = os.path.relpath(file)
    except ValueError:
        return file
    return file if relative.startswith("..") else relative
