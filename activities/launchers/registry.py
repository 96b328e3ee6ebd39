"""The launchers an agent can be configured with (``TETHER_LAUNCHER``, ``--launcher``), by
name. Each is a ``module:Class`` imported on first use only, so an agent with the process
launcher never imports the Docker SDK; this module imports nothing of any backend.

Adding a backend is one module with a ``Launcher`` subclass (its ``name``, its
``from_config``, the ``supports_*`` it has) and one entry here; the agent's configuration
accepts the names listed here and nothing else."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from activities.launchers.base import Launcher
    from worker.config import AgentConfig


@dataclass(frozen=True)
class LauncherEntry:
    target: str  # "package.module:Class", a Launcher subclass
    summary: str  # what it runs user code as, for the configuration's help


LAUNCHERS: dict[str, LauncherEntry] = {
    "process": LauncherEntry("activities.launchers.process:ProcessLauncher", "local processes"),
    "docker": LauncherEntry(
        "activities.launchers.docker:DockerLauncher",
        "containers on a Docker engine; settings TETHER_DOCKER_*",
    ),
}


class UnknownLauncher(ValueError):
    """No launcher has this name; the message lists those that do."""


def launcher_names() -> list[str]:
    return list(LAUNCHERS)


def known_names() -> str:
    """``'process' or 'docker'``: for messages."""
    quoted = [repr(name) for name in LAUNCHERS]
    if len(quoted) < 2:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def describe() -> str:
    """``'process' (local processes) or 'docker' (...)``: for help texts."""
    described = [f"{name!r} ({entry.summary})" for name, entry in LAUNCHERS.items()]
    if len(described) < 2:
        return "".join(described)
    return f"{', '.join(described[:-1])} or {described[-1]}"


def check_name(name: str) -> str:
    if name not in LAUNCHERS:
        raise UnknownLauncher(f"not a launcher this agent has; use {known_names()}")
    return name


def launcher_class(name: str) -> type[Launcher]:
    """The class registered as ``name``, imported now (the first call for a backend imports
    its module and its dependencies)."""
    from activities.launchers.base import Launcher

    module_name, _, class_name = LAUNCHERS[check_name(name)].target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Launcher)) or cls.name != name:
        raise TypeError(f"launcher {name!r} is registered as {cls!r}, not a Launcher named so")
    return cls


def make_launcher(config: AgentConfig) -> Launcher:
    """The launcher ``config.launcher`` names, built from ``config``. Raises UnknownLauncher
    for a name not registered, LaunchError when the backend cannot be reached."""
    return launcher_class(config.launcher).from_config(config)
