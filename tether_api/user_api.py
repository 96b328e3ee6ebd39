"""The user API's bodies (``/api/v1``): deployments, tokens, runs and their event pages."""

from datetime import datetime
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from tether_api.enums import (
    RunStatus,
)
from tether_api.logs import LogSettings
from tether_api.names import Name
from tether_api.retention import RetentionSettings
from tether_api.run_worker_api import RunEvent
from tether_api.wire import (
    JSON_NUMBER,
    MAX_RUN_CONFIG_BYTES,
    MAX_TAGS,
    FieldError,
    Text,
    check_json_size,
)


class Deployment(BaseModel):
    name: str
    organization: str
    run_concurrency_limit: int = Field(description="Runs that may be STARTING/STARTED at once.")
    created_at: datetime
    log_settings: LogSettings = Field(
        default_factory=LogSettings,
        description="Where its runs' logs and errors go, unless a code location sets its own.",
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings,
        description="How long finished runs, ticks, status histories, alerts, backfills and "
        "the asset catalog's history are kept.",
    )


class DeploymentUpdate(BaseModel):
    run_concurrency_limit: Annotated[int, Ge(1), Le(100_000), JSON_NUMBER] | None = None
    log_settings: LogSettings | None = Field(
        default=None,
        description="Replaces the deployment's log settings (given whole); runs launched from "
        "now on follow them.",
    )
    retention: RetentionSettings | None = Field(
        default=None,
        description="Replaces the deployment's retention (given whole; a field left out "
        "takes its default). The next retention pass follows it.",
    )


class AgentTokenCreate(BaseModel):
    description: Text = Field(default="", max_length=200)


class TokenCreated(BaseModel):
    token: str = Field(description="The secret. It is shown once and stored only as a hash.")
    kind: str
    deployment: str | None = None


# Where a run config sits in a RunCreate body: the start of its fields' error locations.
RUN_CONFIG_LOC: tuple[str, ...] = ("body", "run_config")
# The longest idempotency key, and the longest Temporal workflow ID or type name a caller
# may have (Temporal allows 1000 characters by default).
MAX_IDEMPOTENCY_KEY = 200
MAX_WORKFLOW_ID = 1000
CALLER_ONLY_FROM_NEXUS = (
    "only Tether's Nexus service records a caller: leave 'caller' out (a user's run has none)"
)


class RunCaller(BaseModel):
    """The Temporal workflow that started a run through Tether's Nexus service
    (``tether.v1.Runs``), as Temporal told the agent."""

    namespace: Text = Field(
        min_length=1, max_length=255, description="The calling workflow's Temporal namespace."
    )
    workflow_id: Text = Field(
        min_length=1, max_length=MAX_WORKFLOW_ID, description="The calling workflow's ID."
    )
    run_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The calling workflow's run ID (its execution); null when unknown.",
    )
    workflow_type: Text | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_WORKFLOW_ID,
        description="The calling workflow's type name; null when unknown.",
    )
    service_endpoint: Text | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The Nexus endpoint the call came through (the one of this deployment's "
        "agents); null when unknown.",
    )


class RunCreate(BaseModel):
    code_location: Name
    job: Name
    run_config: dict[str, Any] = Field(
        default_factory=dict, description=f"At most {MAX_RUN_CONFIG_BYTES} bytes as JSON."
    )
    tags: dict[
        Annotated[Text, Field(min_length=1, max_length=200)],
        Annotated[Text, Field(max_length=1000)],
    ] = Field(default_factory=dict, max_length=MAX_TAGS)
    idempotency_key: Text | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY,
        description="Makes retrying this request safe: a run with this key already in the "
        "deployment is answered as it is (200, not 201) and nothing new is created, when its "
        "code_location and job are these (else 409). Unique per deployment; null: none.",
    )
    caller: RunCaller | None = Field(
        default=None,
        description="The Temporal workflow that started the run: set only by Tether's Nexus "
        "service (a nexus token); from any other caller, a 422.",
    )

    @field_validator("run_config")
    @classmethod
    def _config_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_json_size(value, MAX_RUN_CONFIG_BYTES, "run_config")


class RunConfigValidation(BaseModel):
    """What creating a run with this body would say about its job and config, without
    creating it."""

    valid: bool = Field(
        description="True when a run with this body would be accepted. Also true while the "
        "code location has reported no definitions yet: then only the run worker can check "
        "the config (config_schema is null)."
    )
    errors: list[FieldError] = Field(
        default_factory=list,
        description="Each problem, as in the 422 answer of creating the run: an unknown job "
        "at ['body', 'job'], a bad config field at ['body', 'run_config', ...path]; `type` is "
        "the JSON Schema keyword that failed (e.g. 'type', 'required', 'minimum').",
    )
    config_schema: dict[str, Any] | None = Field(
        default=None,
        description="The job's config as JSON Schema (from its pydantic model), to show its "
        "fields; null when the job has no config model or is unknown.",
    )


class Run(BaseModel):
    id: str
    deployment: str
    code_location: str
    job: str
    run_config: dict[str, Any]
    tags: dict[str, str]
    status: RunStatus
    status_message: str | None = None
    exit_code: int | None = None
    created_at: datetime
    admitted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    agent: str | None = Field(default=None, description="The agent that launched its worker.")
    attempt: int = Field(default=1, description="1, or which retry of a failed run it is, plus 1.")
    parent_run_id: str | None = Field(default=None, description="The failed run this one retries.")
    root_run_id: str | None = Field(
        default=None, description="The first run of its chain of retries."
    )
    log_settings: LogSettings | None = Field(
        default=None,
        description="The log settings its worker was launched with (recorded at launch); "
        "null before.",
    )
    log_url: str | None = Field(
        default=None,
        description="Where the agent wrote its output (forwarding 'local' with a store_url).",
    )
    retry_run_id: str | None = Field(
        default=None,
        description="The run that retries this one, once its failure made one (its "
        "parent_run_id is this run's id); null otherwise.",
    )
    idempotency_key: str | None = Field(
        default=None, description="The idempotency key it was created with; null: none."
    )
    caller: RunCaller | None = Field(
        default=None,
        description="The Temporal workflow that started it through Tether's Nexus service "
        "(a retry keeps its failed run's); null for any other run.",
    )


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next (older) page."
    )


class RunEventPage(BaseModel):
    events: list[RunEvent]
    last_seq: int = Field(description="Highest seq in this page (or the 'after' asked for).")
    run_status: RunStatus
