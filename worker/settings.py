"""Interval, timeout and launcher settings, overridable by environment variables (the
dagster-cloud agent's convention): ``TETHER_<GROUP>_<FIELD>`` in capitals, e.g.
``TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS=10``,
``TETHER_RUN_START_TIMEOUT_SECONDS=600`` or ``TETHER_DOCKER_ALLOWED_NETWORKS=etl,ml`` (lists
are comma-separated).

A value that does not validate raises ``SettingsError``, whose lines name each variable and
what it takes: ``tether agent run`` exits 2 with them, before connecting anywhere."""

import math
import os
from collections.abc import Sequence
from typing import Any, TypeVar, get_origin

from pydantic import BaseModel, ValidationError

from activities.launchers.docker_settings import DockerSettings, RegistryAuth
from activities.launchers.retention import OutputRetention
from worker.config import describe_errors
from worker.nexus_settings import NexusSettings
from workflows.models import CodeLocationSettings, RunSettings

M = TypeVar("M", bound=BaseModel)

# Durations and counts of CodeLocationSettings and RunSettings, whose models set no bounds: a
# negative (or infinite) one is never meant, and a zero interval or timeout would spin or
# fail at once. Only a grace period may be 0 (SIGKILL at once).
MAY_BE_ZERO = frozenset({"stop_grace_seconds"})


class SettingsError(ValueError):
    """Environment settings that do not validate; ``problems`` has one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _from_env(model: type[M], prefix: str, **extra: Any) -> M:
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        raw = os.environ.get(f"{prefix}{name.upper()}")
        if raw is None:
            continue
        if get_origin(field.annotation) is list:
            values[name] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            values[name] = raw
    try:
        return model.model_validate({**values, **extra})
    except ValidationError as exc:

        def variable(loc: Sequence[int | str]) -> str:
            return f"{prefix}{str(loc[0]).upper()}" if loc else f"{prefix}*"

        raise SettingsError(describe_errors(exc, variable)) from None


def _positive(settings: M, prefix: str) -> M:
    problems = []
    for name, value in settings.model_dump().items():
        variable = f"{prefix}{name.upper()}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if variable not in os.environ:
            continue  # a default
        if not math.isfinite(value) or value < 0 or (value == 0 and name not in MAY_BE_ZERO):
            rule = "0 or more" if name in MAY_BE_ZERO else "more than 0"
            problems.append(f"{variable}: must be a finite number, {rule}")
    if problems:
        raise SettingsError(problems)
    return settings


def code_location_settings() -> CodeLocationSettings:
    prefix = "TETHER_CODE_LOCATION_"
    return _positive(_from_env(CodeLocationSettings, prefix), prefix)


def run_settings() -> RunSettings:
    return _positive(_from_env(RunSettings, "TETHER_RUN_"), "TETHER_RUN_")


def docker_settings() -> DockerSettings:
    """``TETHER_DOCKER_*``; registry credentials from ``TETHER_DOCKER_REGISTRY_USERNAME``,
    ``..._PASSWORD`` and (optionally) ``..._SERVER``."""
    auth = None
    if os.environ.get("TETHER_DOCKER_REGISTRY_USERNAME"):
        auth = _from_env(RegistryAuth, "TETHER_DOCKER_REGISTRY_")
    return _from_env(DockerSettings, "TETHER_DOCKER_", registry_auth=auth)


def output_retention() -> OutputRetention:
    """``TETHER_OUTPUT_RETENTION_*``, e.g. ``TETHER_OUTPUT_RETENTION_KEEP_HOURS=24``."""
    return _from_env(OutputRetention, "TETHER_OUTPUT_RETENTION_")


def nexus_settings() -> NexusSettings:
    """``TETHER_NEXUS_TOKEN``, ``TETHER_NEXUS_CALLERS`` (comma-separated namespaces, '*' for
    any) and ``TETHER_NEXUS_OUTCOME`` (full or ids)."""
    return _from_env(NexusSettings, "TETHER_NEXUS_")
