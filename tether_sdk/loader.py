"""Importing the user's code and finding its ``Definitions``."""

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from tether_api.codeserver import LoadError
from tether_sdk.definitions import Definitions
from tether_sdk.run_worker.interrupt import RunCanceled

DEFAULT_ATTRIBUTE = "defs"


def load_definitions(
    *,
    module: str | None = None,
    python_file: str | None = None,
    working_directory: str | None = None,
    attribute: str | None = None,
) -> Definitions | LoadError:
    """Import ``module`` or ``python_file`` and return its Definitions (``attribute``, else
    ``defs`` or the only one), or why it failed.

    ``working_directory`` becomes the current directory and goes first on ``sys.path``, so
    the user's code imports its siblings as it would when run from there. Any exception
    (including SystemExit from a stray ``sys.exit()`` at import) becomes a LoadError that
    carries the full traceback: a code server must report it, never die of it.
    """
    if bool(module) == bool(python_file):
        return LoadError(message="give exactly one of --module or --python-file", traceback="")
    loaded = import_code(
        module=module, python_file=python_file, working_directory=working_directory
    )
    if isinstance(loaded, LoadError):
        return loaded
    target = module or python_file
    try:
        if attribute:
            named = getattr(loaded, attribute, None)
            if isinstance(named, Definitions):
                return named
            message = f"{target} has no Definitions named {attribute!r}" + (
                f" (it is a {type(named).__name__})" if named is not None else ""
            )
            return LoadError(message=message, traceback=message + "\n")
        return find_definitions(loaded, str(target))
    except Exception as exc:  # e.g. a module-level __getattr__ that raises
        return load_error(exc)


def import_code(
    *,
    module: str | None = None,
    python_file: str | None = None,
    working_directory: str | None = None,
) -> ModuleType | LoadError:
    """Import ``module`` or ``python_file`` (one of them) from ``working_directory``: the
    user's module, or why it failed (as ``load_definitions`` says; shared with the Dagster
    loader, so both kinds import the same way)."""
    if module and not all(part.isidentifier() for part in module.split(".")):
        # Not an import error deep in importlib (a path gives "relative import" TypeErrors).
        message = (
            "module must be a dotted Python module name such as 'my_project.definitions'; "
            f"{module!r} is not one (for a file, give python_file instead)"
        )
        return LoadError(message=message, traceback=message + "\n")
    try:
        enter(working_directory, put_cwd_first=bool(module))
        return _import_module(module) if module else _import_file(python_file or "")
    except BaseException as exc:  # user code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt | RunCanceled):
            raise
        return load_error(exc)


def enter(working_directory: str | None, put_cwd_first: bool = True) -> None:
    """Run from ``working_directory``: it becomes the current directory and goes first on
    ``sys.path``, so the user's code imports its siblings as it would when run from there.
    Without one, the current directory goes first (``put_cwd_first``), as ``python -m``
    does (a console script does not: be consistent)."""
    if working_directory:
        os.chdir(working_directory)
        _prepend_path(os.getcwd())
    elif put_cwd_first:
        _prepend_path(os.getcwd())


def load_error(exc: BaseException) -> LoadError:
    """A LoadError for an exception of the user's code: one line, and the user's traceback."""
    return LoadError(message=_one_line(exc), traceback=user_traceback(exc))


def user_traceback(exc: BaseException) -> str:
    """The traceback without the loader's and importlib's frames: the user's code only."""
    te = traceback.TracebackException.from_exception(exc)
    for part in _chain(te):
        kept = [f for f in part.stack if not _machinery(f.filename)]
        part.stack = traceback.StackSummary.from_list(kept)
    return "".join(te.format())


def _chain(te: traceback.TracebackException) -> list[traceback.TracebackException]:
    parts, seen = [], set()
    current: traceback.TracebackException | None = te
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(current)
        current = current.__cause__ or current.__context__
    return parts


_IMPORTLIB_DIR = os.path.dirname(importlib.__file__)


def _machinery(filename: str) -> bool:
    return (
        filename == __file__
        or filename.startswith("<frozen importlib")
        or os.path.dirname(filename) == _IMPORTLIB_DIR
    )


def find_definitions(mod: ModuleType, target: str) -> Definitions | LoadError:
    """The module's ``defs`` if it is a Definitions, else its only Definitions instance."""
    named = getattr(mod, DEFAULT_ATTRIBUTE, None)
    if isinstance(named, Definitions):
        return named
    found = {k: v for k, v in vars(mod).items() if isinstance(v, Definitions)}
    if len({id(v) for v in found.values()}) == 1:  # one object, perhaps under two names
        return next(iter(found.values()))
    if not found:
        message = (
            f"no Definitions found in {target}: add a module-level "
            "`defs = Definitions(jobs=[...], assets=[...], schedules=[...])`"
        )
    else:
        message = (
            f"several Definitions found in {target} ({', '.join(sorted(found))}): "
            f"name the one to serve `{DEFAULT_ATTRIBUTE}`"
        )
    return LoadError(message=message, traceback=message + "\n")


def _import_module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _import_file(python_file: str) -> ModuleType:
    path = Path(python_file).resolve()
    if not path.is_file():
        raise FileNotFoundError(_not_found(python_file, path))
    # Sibling modules of the file must be importable, as with `python file.py`.
    _prepend_path(str(path.parent))
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path):
        # Do not shadow an already-imported module (e.g. a file called `json.py`).
        name = f"tether_user_code_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    mod = importlib.util.module_from_spec(spec)
    # Registered before executing so that dataclasses, pickling and pydantic can find it.
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


def _not_found(python_file: str, path: Path) -> str:
    # The code server runs where the agent is (or in its image), often not where the user
    # typed the path: say where it looked, and from which directory a relative path was read.
    if os.path.isabs(python_file):
        return (
            f"python file not found: {path} (looked for on the host or in the image where "
            "this code server runs)"
        )
    return (
        f"python file not found: {path} ({python_file!r} is relative, so it was read against "
        f"this code server's directory {os.getcwd()}, on the host or in the image where it "
        "runs: give an absolute path, or a working directory it is relative to)"
    )


def _prepend_path(entry: str) -> None:
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
