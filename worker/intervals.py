"""Interval and timeout settings, overridable by environment variables (the dagster-cloud
agent's convention): ``TETHER_<GROUP>_<FIELD>`` in capitals, e.g.
``TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS=10`` or
``TETHER_RUN_START_TIMEOUT_SECONDS=600``."""

import os
from typing import TypeVar

from pydantic import BaseModel

from workflows.models import CodeLocationSettings, RunSettings

M = TypeVar("M", bound=BaseModel)


def _from_env(model: type[M], prefix: str) -> M:
    values = {
        name: os.environ[f"{prefix}{name.upper()}"]
        for name in model.model_fields
        if f"{prefix}{name.upper()}" in os.environ
    }
    return model.model_validate(values)


def code_location_settings() -> CodeLocationSettings:
    return _from_env(CodeLocationSettings, "TETHER_CODE_LOCATION_")


def run_settings() -> RunSettings:
    return _from_env(RunSettings, "TETHER_RUN_")
