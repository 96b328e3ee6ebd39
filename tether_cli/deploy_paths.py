"""A deploy's paths, taken from the directory the command runs in.

The control plane stores a location's paths and the agent uses them where it runs; a relative
path would be read against the agent's own directory, which is not what ``cd myproj &&
tether deploy weather -f pipeline.py`` means. So the CLI makes them absolute before it sends
them. They must then exist at that path where the agent runs (the same machine with ``tether
dev``; the same mount or checkout otherwise). A location with ``--image`` is different: its
paths are inside the image and are sent as given.
"""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeployPaths:
    python_file: str | None
    working_directory: str | None
    # What the user should know: a path made absolute, or one missing on this machine.
    notes: tuple[str, ...] = ()


def _absolute(path: str) -> str:
    # abspath, not resolve(): a symlinked checkout keeps the path the user sees, and the
    # agent's host may not have the link's target.
    return os.path.abspath(os.path.expanduser(path))


def resolve_deploy_paths(
    python_file: str | None, working_directory: str | None, image: str | None
) -> DeployPaths:
    """``working_directory``, and ``python_file`` without one, made absolute against the
    current directory (with ``image``: as given). With a working directory the python file
    stays relative to it, as the API takes it; an absolute one inside it is made relative."""
    if image:
        return DeployPaths(python_file, working_directory)
    notes: list[str] = []
    directory = working_directory
    if directory and not os.path.isabs(directory):
        directory = _absolute(directory)
        notes.append(f"--working-directory {working_directory} is {directory}")
    file = python_file
    if file and directory:
        if os.path.isabs(file):
            inside = Path(os.path.normpath(file))
            if inside.is_relative_to(directory):
                file = str(inside.relative_to(directory))
        local = Path(directory, file)
    elif file:
        if not os.path.isabs(file):
            file = _absolute(file)
            notes.append(f"--python-file {python_file} is {file}")
        local = Path(file)
    else:
        local = None
    if local is not None and not local.is_file():
        notes.append(
            f"{local} is not a file on this machine: the agent must find it at that path "
            "where it runs"
        )
    elif directory and not os.path.isdir(directory):
        notes.append(
            f"{directory} is not a directory on this machine: the agent must find it at "
            "that path where it runs"
        )
    return DeployPaths(file, directory, tuple(notes))
