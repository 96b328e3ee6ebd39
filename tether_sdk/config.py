"""Validation of a run's config against a job's pydantic model.

Shared by the code server (``POST /validate``) and the run worker, so both give the same
answer and name the same fields. A key no model defines is refused unless its model says it
takes extra keys (see ``unknown_keys``).
"""

from typing import Any

from pydantic import BaseModel, ValidationError

from tether_api.codeserver import ConfigError
from tether_sdk.unknown_keys import unknown_keys


def validate_config(
    model: type[BaseModel] | None, run_config: dict[str, Any]
) -> tuple[BaseModel | None, list[ConfigError]]:
    """Return ``(config, [])`` when ``run_config`` is valid, else ``(None, errors)``.

    A job without a config model accepts only an empty run config: keys given to such a
    job are almost always a mistake (a typo in the job name, or a forgotten model).
    """
    if model is None:
        return None, [
            ConfigError(field=key, message="this job takes no config (it has no config model)")
            for key in run_config
        ]
    try:
        config = model.model_validate(run_config)
    except ValidationError as exc:
        # Unknown keys too, so that a typo shows beside the field it left out. A model that
        # forbids extra keys itself makes pydantic say so as well: said once, our way.
        unknown = unknown_keys(model, run_config)
        said = {e.field for e in unknown}
        errors: list[ConfigError] = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(part) for part in err["loc"])
            if not (err["type"] == "extra_forbidden" and field in said):
                errors.append(ConfigError(field=field, message=err["msg"]))
        return None, errors + unknown
    except Exception as exc:  # a user validator raising something pydantic does not wrap
        return None, [ConfigError(field="", message=f"{type(exc).__name__}: {exc}")]
    unknown = unknown_keys(model, run_config, config)
    return (None, unknown) if unknown else (config, [])


def describe_errors(job: str, errors: list[ConfigError]) -> str:
    """One readable line, e.g. ``invalid run config for job 'etl': source: Field required``."""
    details = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
    return f"invalid run config for job {job!r}: {details}"
