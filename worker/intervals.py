"""Interval, timeout and launcher settings, overridable by environment variables (the
dagster-cloud agent's convention): ``TETHER_<GROUP>_<FIELD>`` in capitals, e.g.
``TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS=10``,
``TETHER_RUN_START_TIMEOUT_SECONDS=600`` or ``TETHER_DOCKER_ALLOWED_NETWORKS=etl,ml`` (lists
are comma-separated)."""

import os
from typing import Any, TypeVar, get_origin

from pydantic import BaseModel

from activities.launchers.docker_settings import DockerSettings, RegistryAuth
from activities.launchers.retention import OutputRetention
from workflows.models import CodeLocationSettings, RunSettings

M = TypeVar("M", bound=BaseModel)


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
    return model.model_validate({**values, **extra})


def code_location_settings() -> CodeLocationSettings:
    return _from_env(CodeLocationSettings, "TETHER_CODE_LOCATION_")


def run_settings() -> RunSettings:
    return _from_env(RunSettings, "TETHER_RUN_")


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
