"""The rules for a code location's module name and paths: the patterns published in the API
schema, and the same rules in words for error messages (the two agree exactly)."""

import re
from typing import Any

from pydantic_core import PydanticCustomError

MODULE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
# One path component that is not '..' and holds no '/' or NUL (empty and '.' are harmless).
_NONEMPTY = r"(?:[^/\x00.][^/\x00]*|\.[^/\x00.][^/\x00]*|\.\.[^/\x00]+|\.)"
_COMPONENT = rf"{_NONEMPTY}?"
# A code location's paths, as published in the schema and enforced by the validators below:
# an absolute working directory, and a python file, each without '..' components or NUL.
WORKING_DIRECTORY_PATTERN = rf"^(?:/{_COMPONENT})+$"
PYTHON_FILE_PATTERN = rf"^{_COMPONENT}(?:/{_COMPONENT})*$"
# The same, relative: what python_file must be when a working directory is given.
RELATIVE_FILE_PATTERN = rf"^{_NONEMPTY}(?:/{_COMPONENT})*$"


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def module_problem(value: str) -> str | None:
    """Why ``value`` is not a module name the API takes, or None (MODULE_PATTERN)."""
    if re.fullmatch(MODULE_PATTERN, value):
        return None
    return (
        "module must be a dotted Python module name such as 'my_project.definitions' "
        f"(identifiers of letters, digits and '_', joined by '.'); {_shown(value)} is not one"
    )


def working_directory_problem(value: str) -> str | None:
    """Why ``value`` is not a working directory the API takes, or None
    (WORKING_DIRECTORY_PATTERN)."""
    if re.fullmatch(WORKING_DIRECTORY_PATTERN, value):
        return None
    allowed = (
        "working_directory must be an absolute path (e.g. /opt/project) with no '..' components"
    )
    if "\x00" in value:
        why = "it holds a NUL byte"
    elif not value:
        why = "it is empty (leave it out for the launcher's default)"
    elif not value.startswith("/"):
        why = (
            f"{_shown(value)} is relative: relative directories would resolve against the "
            "agent's own directory"
        )
    else:
        why = f"{_shown(value)} has one"
    return f"{allowed}; {why}"


def python_file_problem(value: str, working_directory: str | None) -> str | None:
    """Why ``value`` is not a python file the API takes, or None. Without '..' components or
    NUL (PYTHON_FILE_PATTERN); relative to ``working_directory`` when that is given
    (RELATIVE_FILE_PATTERN)."""
    if working_directory:
        allowed = "python_file must be a path inside working_directory, e.g. 'definitions.py'"
    else:
        allowed = "python_file must be a path with no '..' components, e.g. 'definitions.py'"
    if "\x00" in value:
        return f"{allowed}; it holds a NUL byte"
    if not re.fullmatch(PYTHON_FILE_PATTERN, value):
        return f"{allowed}; {_shown(value)} has a '..' component, which is not allowed"
    if working_directory and not re.fullmatch(RELATIVE_FILE_PATTERN, value):
        return (
            f"{allowed}; {_shown(value)} is not relative to it (it is taken from "
            f"working_directory {_shown(working_directory)})"
        )
    return None


def check(problem: str | None) -> None:
    # The message as is: no "Value error, " in front of it.
    if problem is not None:
        raise PydanticCustomError("invalid_code_location", problem)


def check_module(value: Any) -> Any:
    if isinstance(value, str):
        check(module_problem(value))
    return value


def check_working_directory(value: Any) -> Any:
    if isinstance(value, str):
        check(working_directory_problem(value))
    return value
