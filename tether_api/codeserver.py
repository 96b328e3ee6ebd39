"""The code server's HTTP protocol (spoken by the agent, served by the SDK)."""

from typing import Any

from pydantic import BaseModel, Field

from tether_api.snapshot import DefinitionsSnapshot


class LoadError(BaseModel):
    """Why the user's definitions could not be loaded."""

    message: str = Field(description="One line: the exception type and message.")
    traceback: str = Field(description="The full Python traceback.")


class Health(BaseModel):
    """``GET /health``. The server is up even when the definitions failed to load."""

    ok: bool = True
    pid: int
    loaded: bool = Field(description="True when the definitions imported without error.")
    load_error: LoadError | None = None


class SnapshotResponse(BaseModel):
    """``GET /snapshot``: either the snapshot or the load error, never neither."""

    snapshot: DefinitionsSnapshot | None = None
    load_error: LoadError | None = None


class ValidateRequest(BaseModel):
    """``POST /validate``."""

    job: str
    run_config: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="The run's tags: a Dagster run's partition and asset selection are tags.",
    )


class ConfigError(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. 'source.rows'.")
    message: str


class ValidateResponse(BaseModel):
    valid: bool
    steps: list[str] = Field(default_factory=list, description="Steps it would execute, in order.")
    message: str | None = Field(default=None, description="Why it is invalid, for a person.")
    errors: list[ConfigError] = Field(default_factory=list)
