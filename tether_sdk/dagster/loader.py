"""Finding a Dagster project's definitions the ways Dagster users name them: a module or a
Python file (``dagster dev -m`` / ``-f``), an attribute (``-a``), or a project folder
whose ``pyproject.toml`` says where they are (``[tool.dagster]``, or ``[tool.dg.project]``
for projects made by ``dg``).

The code is imported the way Tether's own locations are (``tether_sdk.loader.import_code``:
the working directory first on ``sys.path``, the user's traceback on failure); then Dagster's
own rules pick the target in the module (``loadable_targets_from_loaded_module``: a
``@definitions`` function, else the one ``Definitions``, else ``@repository``s, a single job,
graph, or the module's assets) and turn it into a repository. Definition errors surface only
there (``Definitions(...)`` checks nothing at import), so that is inside the load error's
boundary too.

Dagster internals used: ``dagster._core.workspace.autodiscovery``
(``loadable_targets_from_loaded_module``), ``dagster._core.definitions.reconstruct``
(``repository_def_from_target_def``).
"""

import os
import tomllib
from dataclasses import dataclass
from typing import Any

from dagster import RepositoryDefinition
from dagster._core.definitions.reconstruct import repository_def_from_target_def
from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module

from tether_api.codeserver import LoadError
from tether_sdk.loader import enter, import_code, load_error


def _refusal(message: str) -> LoadError:
    return LoadError(message=message, traceback=message + "\n")


@dataclass(frozen=True)
class ProjectTarget:
    """What a project's pyproject.toml names."""

    module: str
    attribute: str | None = None
    autoload: bool = False  # a dg project's defs folder (dagster.components.load_defs)


def project_target(working_directory: str) -> ProjectTarget | LoadError:
    """The module a Dagster project's pyproject.toml names, or why there is none."""
    path = os.path.join(working_directory, "pyproject.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return _refusal(
            f"no module, python_file or pyproject.toml: {path} does not exist; give the "
            "module holding the Definitions (module: my_project.definitions)"
        )
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return _refusal(f"cannot read {path}: {exc}")
    tool = data.get("tool", {})
    dagster = tool.get("dagster", {})
    if isinstance(dagster, dict) and dagster.get("module_name"):
        return ProjectTarget(str(dagster["module_name"]), dagster.get("attribute"))
    if isinstance(dagster, dict) and dagster.get("modules"):
        modules = dagster["modules"]
        if len(modules) != 1:
            return _refusal(
                f"{path} names {len(modules)} modules under [tool.dagster] modules; a Tether "
                "code location serves one: deploy one location per module (module: ...)"
            )
        return ProjectTarget(str(modules[0]["name"]), modules[0].get("attribute"))
    project = tool.get("dg", {}).get("project", {})
    if isinstance(project, dict) and project.get("root_module"):
        root = str(project["root_module"])
        if project.get("autoload_defs"):
            return ProjectTarget(str(project.get("defs_module") or f"{root}.defs"), autoload=True)
        return ProjectTarget(
            str(project.get("code_location_target_module") or f"{root}.definitions")
        )
    return _refusal(
        f"{path} does not say where the definitions are: add [tool.dagster] "
        'module_name = "my_project.definitions", or give the module'
    )


def load_repository(
    *,
    module: str | None,
    python_file: str | None,
    working_directory: str | None,
    attribute: str | None,
) -> RepositoryDefinition | LoadError:
    """Import the project's code and return its one repository (definitions loaded), or
    why not."""
    autoload = False
    if not module and not python_file:
        found = project_target(working_directory or os.getcwd())
        if isinstance(found, LoadError):
            return found
        module, attribute, autoload = found.module, attribute or found.attribute, found.autoload
    where = f"module {module}" if module else f"file {python_file}"
    if autoload:
        return _autoload(module or "", working_directory)
    loaded = import_code(
        module=module, python_file=python_file, working_directory=working_directory
    )
    if isinstance(loaded, LoadError):
        return loaded
    try:
        if attribute:
            if not hasattr(loaded, attribute):
                return _refusal(f"{where} has no attribute {attribute!r}")
            targets: list[Any] = [getattr(loaded, attribute)]
        else:
            targets = [t.target_definition for t in loadable_targets_from_loaded_module(loaded)]
        if len(targets) > 1:
            names = ", ".join(
                sorted(getattr(t, "name", "?") for t in targets)  # legacy @repository
            )
            return _refusal(
                f"{where} holds {len(targets)} repositories ({names}); a code location serves "
                "one: set 'attribute' to the one to serve"
            )
        repo = repository_def_from_target_def(targets[0])
        if repo is None:
            return _refusal(
                f"{where}: {attribute!r} is not a Definitions, a @definitions function, a "
                "repository, a job, a graph or an asset"
            )
        repo.load_all_definitions()
    except BaseException as exc:  # user code, and Dagster's definition errors
        if isinstance(exc, KeyboardInterrupt):
            raise
        return load_error(exc)
    return repo


def _autoload(module: str, working_directory: str | None) -> RepositoryDefinition | LoadError:
    """A dg project's definitions folder, loaded as ``dg`` does (``load_defs``)."""
    try:
        enter(working_directory)
        import importlib

        from dagster.components import load_defs

        defs = load_defs(importlib.import_module(module))
        repo = defs.get_repository_def()
        repo.load_all_definitions()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return load_error(exc)
    return repo
