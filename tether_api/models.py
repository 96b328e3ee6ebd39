"""Request and response bodies of the REST API (``/api/v1``)."""

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar, get_args

from annotated_types import Ge, Gt, Le
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tether_api.enums import (
    CodeLocationStatus,
    EventType,
    RequestStatus,
    RequestType,
    RunStatus,
)
from tether_api.logs import LogSettings
from tether_api.names import DEFAULT_AGENT_QUEUE, Name
from tether_api.paths import (
    MODULE_PATTERN,
    PYTHON_FILE_PATTERN,
    RELATIVE_FILE_PATTERN,
    WORKING_DIRECTORY_PATTERN,
    check,
    check_module,
    check_working_directory,
    python_file_problem,
)
from tether_api.snapshot import DefinitionsSnapshot

MAX_EVENTS_PER_BATCH = 5000
MAX_LOG_TAIL_LINES = 200
MAX_MESSAGE_CHARS = 64 * 1024
# Serialized JSON size caps: one request must not be able to make the server hold gigabytes.
MAX_RUN_CONFIG_BYTES = 256 * 1024
MAX_EVENT_DATA_BYTES = 256 * 1024
MAX_TAGS = 100
MAX_SEQ = 2**31 - 1  # per-run sequence numbers are 32-bit in storage
INT32 = 2**31 - 1


def strip_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a stray one in a log line must not block a run's events.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


T = TypeVar("T")


def _json_number(value: Any) -> Any:
    # JSON Schema's types, not Python's coercions: `false` is not 0 and "5" is not 5.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a number")
    return value


# Request fields take what their published JSON Schema type allows, no more: an integer is
# an int or an integral float (5.0), a number is an int or a float, a boolean is a bool. A
# client that sends another JSON type gets a 422 naming the field.
# (Constraints go before JSON_NUMBER in an Annotated, or the schema loses them.)
JSON_NUMBER = BeforeValidator(_json_number)
JsonInt = Annotated[int, JSON_NUMBER]
JsonFloat = Annotated[float, JSON_NUMBER]
JsonBool = Annotated[bool, Strict()]

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _date_time_text(value: Any) -> Any:
    # pydantic would read a number, or a string of one, as Unix time; JSON Schema's
    # date-time is an RFC 3339 string.
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip())
    ):
        raise ValueError(
            "must be an ISO 8601 date-time with a time zone, e.g. 2026-01-01T00:00:00Z"
        )
    return value


# A date-time a client sends (a body field, a query parameter): text with a time zone.
JsonDateTime = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]

# Free text from users' code or agents: NUL bytes replaced.
Text = Annotated[str, AfterValidator(strip_nul)]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")))


def check_json_size(value: T, limit: int, what: str) -> T:
    size = _json_size(value)
    if size > limit:
        raise ValueError(f"{what} is {size} bytes as JSON; the limit is {limit} bytes")
    return value


# --- errors ----------------------------------------------------------------------------


class FieldError(BaseModel):
    """One bad field of a request."""

    loc: list[str | int] = Field(
        description="Where: 'body', 'query', 'path' or 'header', then the field's path."
    )
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="A machine-readable kind, e.g. 'missing', 'string_too_long'.")


class TokenRefusalReason(StrEnum):
    """Why the control plane refused a request's token (the ``reason`` of its 401 answers)."""

    TOKEN_MISSING = "token_missing"
    TOKEN_UNKNOWN = "token_unknown"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_EXPIRED = "token_expired"


class ErrorResponse(BaseModel):
    """The body of every error answer (4xx) of the API."""

    detail: str = Field(description="What went wrong and how to fix it, in one line.")
    errors: list[FieldError] = Field(
        default_factory=list,
        description="Each bad field, for validation errors (422); empty otherwise.",
    )
    reason: TokenRefusalReason | None = Field(
        default=None,
        description="On a 401 from Tether itself, why the token was refused: token_missing, "
        "token_unknown, token_revoked or token_expired. Absent on other errors; a 401 "
        "without it came from something in front of the control plane (a proxy).",
    )


# --- deployments and tokens -------------------------------------------------------------


class Deployment(BaseModel):
    name: str
    organization: str
    run_concurrency_limit: int = Field(description="Runs that may be STARTING/STARTED at once.")
    created_at: datetime
    log_settings: LogSettings = Field(
        default_factory=LogSettings,
        description="Where its runs' logs and errors go, unless a code location sets its own.",
    )


class DeploymentUpdate(BaseModel):
    run_concurrency_limit: Annotated[int, Ge(1), Le(100_000), JSON_NUMBER] | None = None
    log_settings: LogSettings | None = Field(
        default=None,
        description="Replaces the deployment's log settings (given whole); runs launched from "
        "now on follow them.",
    )


class AgentTokenCreate(BaseModel):
    description: Text = Field(default="", max_length=200)


class TokenCreated(BaseModel):
    token: str = Field(description="The secret. It is shown once and stored only as a hash.")
    kind: str
    deployment: str | None = None


class RunToken(BaseModel):
    token: str


# --- code locations ---------------------------------------------------------------------


class VolumeMount(BaseModel):
    """One volume of a location's containers."""

    source: str = Field(
        min_length=1,
        max_length=1000,
        description="A named volume, or an absolute host path (a bind mount: only where the "
        "agent allows host mounts).",
    )
    target: str = Field(
        min_length=1, max_length=1000, pattern=r"^/", description="Absolute path in the container."
    )
    read_only: JsonBool = Field(default=False, description="Mount it read-only.")


class ContainerContext(BaseModel):
    """How the Docker launcher runs the location's containers (code server and run workers).
    Not a place for secrets: it is stored by the control plane as given; name them in
    ``passthrough_env`` and the agent copies them from its own environment."""

    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the containers."
    )
    passthrough_env: list[str] = Field(
        default_factory=list,
        description="Extra names of variables the agent copies from its own environment.",
    )
    volumes: list[VolumeMount] = Field(default_factory=list, max_length=100)
    network: str | None = Field(
        default=None,
        max_length=200,
        description="Network to attach to ('host' for host networking); the agent's own "
        "setting decides which are allowed. Default: the agent's network.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra container labels; keys starting with 'tether.' are the launcher's.",
    )
    cpus: Annotated[float, Gt(0), Le(1024), JSON_NUMBER] | None = Field(
        default=None, description="CPU limit, in cores (e.g. 0.5)."
    )
    memory: str | None = Field(
        default=None,
        pattern=r"^[0-9]+[bkmgBKMG]?$",
        description="Memory limit, e.g. '512m' or '2g'.",
    )
    warm_pool: Annotated[int, Ge(0), Le(32), JSON_NUMBER] = Field(
        default=0,
        description="Run containers kept started, with the code imported, waiting for a run: "
        "a run takes one when there is one (and another is started in its place) instead of "
        "starting a container. Per code server generation; 0 (the default) keeps none.",
    )


def _is_string(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"type": "string"}}}


def one_target_schema(python_file_rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """Exactly one of ``module`` and ``python_file``, as JSON Schema that keeps the model a
    plain object with both properties optional: a generated client types both (a ``oneOf``
    beside the properties makes generators see a union of the two one-field objects).

    ``python_file_rule``: what else a given python_file must satisfy."""
    return {
        "if": _is_string("module"),
        "then": {"properties": {"python_file": {"type": "null"}}},
        "else": {**_is_string("python_file"), **(python_file_rule or {})},
    }


_ONE_TARGET = (
    "Exactly one of 'module' and 'python_file' is given (the other absent or null); a body "
    "with both or neither is refused with a 422."
)


class CodeLocationSpec(BaseModel):
    """What to run for a code location: exactly one of ``module`` and ``python_file`` (the
    other absent or null).

    The shape the control plane stores and answers with. A deploy sends the stricter
    ``CodeLocationDeploy``: specs stored before its path rules existed still read back."""

    image: str | None = Field(
        default=None, max_length=500, description="Container image (Docker launcher)."
    )
    working_directory: str | None = Field(
        default=None,
        max_length=1000,
        description="Working directory: an absolute path with no '..' components, on the "
        "agent's host (process launcher) or in the image (Docker launcher).",
    )
    python_executable: str | None = Field(
        default=None, max_length=1000, description="Python to run (process launcher)."
    )
    # The rule _one_target enforces, said in the schema (see one_target_schema).
    model_config = ConfigDict(json_schema_extra=one_target_schema())

    module: str | None = Field(
        default=None,
        max_length=300,
        pattern=MODULE_PATTERN,
        description="Module to import, as a dotted name (e.g. 'my_project.definitions'). "
        + _ONE_TARGET,
    )
    python_file: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="File to load: a path with no '..' components, relative to "
        "working_directory when that is given (e.g. 'definitions.py'). " + _ONE_TARGET,
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables (not secret: stored as given)."
    )
    passthrough_env: list[str] = Field(
        default_factory=list,
        description="Names of variables the agent copies from its own environment: secrets "
        "stay in the user's environment and never reach the control plane.",
    )
    command: list[str] | None = Field(
        default=None, description="Overrides the code server command, for custom images."
    )
    container: ContainerContext | None = Field(
        default=None, description="Docker launcher: env, volumes, network, labels, limits."
    )
    agent_queue: Name | None = Field(
        default=None,
        description="The agent queue whose agents serve this location (`tether agent run "
        "--queue NAME`); unset: the deployment's default queue.",
    )
    launch: Literal["cold", "warm"] = Field(
        default="warm",
        description="Process launcher: 'warm' (the default) forks each run worker from the "
        "code server's fork server (user code already imported; module-level code runs once "
        "per code server), falling back to a cold start when it is not up; 'cold' starts a "
        "new interpreter per run and never forks.",
    )
    logs: LogSettings | None = Field(
        default=None,
        description="This location's log settings, replacing the deployment's whole; unset: "
        "the deployment's.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> "CodeLocationSpec":
        if bool(self.module) == bool(self.python_file):
            raise ValueError(
                "give exactly one of 'module' (an importable module) or 'python_file' "
                "(a path to a .py file) holding the definitions"
            )
        return self


class CodeLocationDeploy(CodeLocationSpec):
    """A code location's spec as deployed (``PUT``): its paths and module are checked, each
    rule published in the schema and explained in the error."""

    model_config = ConfigDict(
        json_schema_extra=one_target_schema(
            # With a working directory, the python file is relative to it.
            {
                "if": _is_string("working_directory"),
                "then": {"properties": {"python_file": {"pattern": RELATIVE_FILE_PATTERN}}},
            }
        )
    )

    # The validators run before the published pattern and say, in their own words, what it
    # allows; the two agree exactly (see the *_PATTERN constants).
    working_directory: (
        Annotated[
            str,
            Field(max_length=1000, pattern=WORKING_DIRECTORY_PATTERN),
            BeforeValidator(check_working_directory),
        ]
        | None
    ) = Field(
        default=None,
        description="Working directory: an absolute path with no '..' components, on the "
        "agent's host (process launcher) or in the image (Docker launcher).",
    )
    module: (
        Annotated[str, Field(max_length=300, pattern=MODULE_PATTERN), BeforeValidator(check_module)]
        | None
    ) = Field(
        default=None,
        description="Module to import, as a dotted name (e.g. 'my_project.definitions'). "
        + _ONE_TARGET,
    )
    python_file: (
        Annotated[str, Field(min_length=1, max_length=1000, pattern=PYTHON_FILE_PATTERN)] | None
    ) = Field(
        default=None,
        description="File to load: a path with no '..' components, relative to "
        "working_directory when that is given (e.g. 'definitions.py'), else relative to the "
        "agent's directory or absolute. " + _ONE_TARGET,
    )

    @field_validator("python_file", mode="before")
    @classmethod
    def _python_file_inside(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            check(python_file_problem(value, info.data.get("working_directory")))
        return value


class CodeLocationError(BaseModel):
    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    log_tail: list[str] = Field(default_factory=list, description="Last lines of server output.")


class StatusChange(BaseModel):
    status: CodeLocationStatus
    message: str | None = None
    at: datetime


class CodeLocation(BaseModel):
    name: str
    deployment: str
    spec: CodeLocationSpec
    status: CodeLocationStatus
    generation: int = Field(description="Increases with every change of spec and every redeploy.")
    error: CodeLocationError | None = None
    snapshot: DefinitionsSnapshot | None = None
    snapshot_updated_at: datetime | None = None
    deployed_at: datetime | None = Field(
        default=None,
        description="When the current generation was asked for (deploy, redeploy, changed spec).",
    )
    created_at: datetime
    updated_at: datetime
    removed: bool = False
    status_history: list[StatusChange] | None = Field(
        default=None, description="Most recent first; only in the single-location view."
    )
    warning: str | None = Field(
        default=None,
        description="Something that keeps the location from being served, e.g. no live agent "
        "serves its agent queue.",
    )
    log_settings: LogSettings = Field(
        default_factory=LogSettings,
        description="The settings its runs and code server follow: the spec's 'logs', else "
        "the deployment's.",
    )


class CodeLocationPutResult(BaseModel):
    code_location: CodeLocation
    changed: bool = Field(description="False when the spec was already deployed as given.")


# --- runs -------------------------------------------------------------------------------


# Where a run config sits in a RunCreate body: the start of its fields' error locations.
RUN_CONFIG_LOC: tuple[str, ...] = ("body", "run_config")


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


class RunLaunch(BaseModel):
    """What an agent needs to start a run's worker, in one call."""

    run: Run
    code_location: CodeLocation = Field(description="The run's code location, as deployed now.")
    token: str | None = Field(
        default=None,
        description="A fresh run token (revoking any earlier one), minted only while the run is "
        "STARTING: a run launched already, or finished, gets none.",
    )


class PoolAssignment(BaseModel):
    """What the Docker launcher writes, as one JSON line, to the stdin of a pooled run worker
    (``tether run-worker --wait-for-run``) to give it its run."""

    env: dict[str, str] = Field(
        description="Set before the run starts: TETHER_RUN_ID, TETHER_CONTROL_PLANE_URL, "
        "TETHER_RUN_TOKEN and the location's resolved environment."
    )
    run: Run | None = Field(default=None, description="The run, as the launch read it.")


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next (older) page."
    )


class RunEvent(BaseModel):
    seq: JsonInt = Field(ge=1, le=MAX_SEQ, description="Per-run sequence number, from 1.")
    type: EventType
    timestamp: datetime
    step: Text | None = Field(default=None, max_length=200)
    level: Text | None = Field(default=None, max_length=20)
    message: Text = Field(default="", max_length=MAX_MESSAGE_CHARS)
    data: dict[str, Any] = Field(
        default_factory=dict, description=f"At most {MAX_EVENT_DATA_BYTES} bytes as JSON."
    )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _text_or_datetime(cls, value: Any) -> Any:
        if isinstance(value, int | float):  # pydantic would read a number as Unix time
            raise ValueError("timestamp must be an ISO 8601 string, e.g. 2026-01-01T00:00:00Z")
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a time zone, e.g. 2026-01-01T00:00:00Z")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # Within an hour of year 1 or year 9999: a valid date-time that UTC cannot hold.
            # Clamped rather than refused, so the event itself is not lost.
            edge = datetime.min if value.year == 1 else datetime.max
            return edge.replace(tzinfo=UTC)

    @field_validator("data")
    @classmethod
    def _data_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        return check_json_size(value, MAX_EVENT_DATA_BYTES, "event data")


class EventBatch(BaseModel):
    events: list[RunEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventBatchResult(BaseModel):
    accepted: int = Field(description="Events stored by this call.")
    duplicates: int = Field(description="Events already stored by an earlier delivery.")
    run_status: RunStatus


class RunEventPage(BaseModel):
    events: list[RunEvent]
    last_seq: int = Field(description="Highest seq in this page (or the 'after' asked for).")
    run_status: RunStatus


class WorkerHeartbeatResult(BaseModel):
    run_status: RunStatus
    cancel_requested: bool = Field(
        description="True when the worker must stop: the run is being canceled, or it was "
        "already recorded CANCELED or FAILURE without it (e.g. its agent's host was lost and "
        "its max runtime passed, or it was silent past the heartbeat timeout)."
    )


# --- agent API --------------------------------------------------------------------------


class AgentCodeLocationState(BaseModel):
    name: str
    status: CodeLocationStatus
    detail: str | None = None


class AgentHeartbeat(BaseModel):
    agent_name: Name
    version: Text = Field(default="", max_length=100)
    launcher: Text = Field(default="", max_length=100)
    code_locations: list[AgentCodeLocationState] = Field(default_factory=list, max_length=10_000)
    metadata: dict[str, str] = Field(default_factory=dict)
    queues: list[Name] = Field(
        default_factory=lambda: [DEFAULT_AGENT_QUEUE],
        max_length=100,
        description="The agent queues this agent serves.",
    )


class Agent(BaseModel):
    name: str
    organization: str = Field(description="The deployment's organization.")
    deployment: str
    version: str
    launcher: str
    available: bool = Field(description="False when no heartbeat came within the timeout.")
    last_heartbeat_at: datetime
    code_locations: list[AgentCodeLocationState]
    metadata: dict[str, str]
    queues: list[str] = Field(
        default_factory=lambda: [DEFAULT_AGENT_QUEUE], description="The agent queues it serves."
    )


class PollAck(BaseModel):
    id: Text = Field(max_length=40, description="The request's ID.")
    attempt: Annotated[int, Ge(1), Le(INT32), JSON_NUMBER] = Field(
        description="The claim's attempt, from the poll that returned it."
    )


class PollRequest(BaseModel):
    agent_name: Name
    max_requests: JsonInt = Field(default=10, ge=1, le=100)
    wait_seconds: JsonFloat = Field(default=20.0, ge=0, le=30, description="Long-poll hold time.")
    lease_seconds: Annotated[float, Ge(1), Le(3600), JSON_NUMBER] | None = Field(
        default=None, description="Lease length; the server default when unset."
    )
    queues: list[Name] | None = Field(
        default=None,
        max_length=100,
        description="Claim only requests of these agent queues; unset: the default queue.",
    )
    acks: list[PollAck] = Field(
        default_factory=list,
        max_length=1000,
        description="Requests this agent handled since its last poll: acknowledged first, as "
        "POST .../requests/{id}/ack would, in the same transaction as the claim. A stale one "
        "(claimed again since) and an unknown one change nothing.",
    )


class AgentRequest(BaseModel):
    id: str
    type: RequestType
    payload: dict[str, Any]
    status: RequestStatus
    attempt: int = Field(description="How many times this request has been claimed.")
    queue: str = Field(default=DEFAULT_AGENT_QUEUE, description="The agent queue it is routed to.")
    created_at: datetime
    lease_expires_at: datetime | None = None

    def subject(self) -> str:
        """What it is about, for histories and logs: a run, a code location or a tick."""
        tick = self.payload.get("tick")
        if isinstance(tick, dict):
            kind, location = self.payload.get("kind"), self.payload.get("code_location")
            return f"{kind} {tick.get('name')} of {location}"
        return str(self.payload.get("run_id") or self.payload.get("code_location") or "")


class PollResponse(BaseModel):
    requests: list[AgentRequest]


class RequestAck(BaseModel):
    attempt: Annotated[int, Ge(1), Le(INT32), JSON_NUMBER] | None = Field(
        default=None,
        description="The claim's attempt, from the poll. When given, a stale claim (the lease "
        "expired and the request was claimed again) changes nothing and answers 409.",
    )


class RequestFailure(RequestAck):
    error: Text = Field(max_length=MAX_MESSAGE_CHARS)
    retry: JsonBool = Field(default=False, description="Make the request visible again at once.")


class CodeLocationStatusReport(BaseModel):
    status: CodeLocationStatus
    message: Text | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    log_tail: list[Annotated[Text, Field(max_length=MAX_MESSAGE_CHARS)]] = Field(
        default_factory=list, max_length=MAX_LOG_TAIL_LINES
    )
    snapshot: DefinitionsSnapshot | None = None
    generation: Annotated[int, Ge(0), Le(INT32), JSON_NUMBER] | None = Field(
        default=None,
        description="Generation this report is about; stale reports are ignored.",
    )


# What an agent may report: QUEUED belongs to the control plane's admission alone.
ReportedRunStatus = Literal[
    RunStatus.STARTING,
    RunStatus.STARTED,
    RunStatus.CANCELING,
    RunStatus.SUCCESS,
    RunStatus.FAILURE,
    RunStatus.CANCELED,
]
REPORTED_RUN_STATUSES = tuple(s.value for s in get_args(ReportedRunStatus))


class NewGeneration(BaseModel):
    reason: Text = Field(
        default="redeploy requested through Temporal",
        max_length=1000,
        description="Why, for the location's status history.",
    )
    follows: Annotated[int, Ge(0), Le(INT32), JSON_NUMBER] | None = Field(
        default=None,
        description="The generation the new one follows (the one the agent knows): a new "
        "generation is recorded only while the location's is still that one, otherwise the "
        "location is answered as it is, so a retried call records one at most. Omitted: "
        "every call records one.",
    )


class RunStatusReport(BaseModel):
    status: ReportedRunStatus = Field(
        description="The run's new status; the state machine ignores a report it has moved "
        "past (a finished run keeps its final status)."
    )
    message: Text | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    exit_code: Annotated[int, Ge(-INT32), Le(INT32), JSON_NUMBER] | None = None
    log_tail: list[Annotated[Text, Field(max_length=MAX_MESSAGE_CHARS)]] = Field(
        default_factory=list, max_length=MAX_LOG_TAIL_LINES
    )
    agent: Name | None = Field(
        default=None, description="The agent whose host runs the run worker (with STARTED)."
    )

    @field_validator("status", mode="before")
    @classmethod
    def _reportable(cls, value: Any) -> Any:
        if value not in REPORTED_RUN_STATUSES:
            raise ValueError(
                f"an agent reports one of {', '.join(REPORTED_RUN_STATUSES)}; "
                f"{value!r} is not one (QUEUED is set by the control plane only)"
            )
        return value


# --- request payloads (what an AgentRequest.payload holds, by type) ---------------------


class SyncCodeLocationPayload(BaseModel):
    code_location: str
    generation: int


class RemoveCodeLocationPayload(BaseModel):
    code_location: str
    generation: int | None = Field(
        default=None,
        description="The generation being removed: a deploy of a newer one supersedes it.",
    )


class LaunchRunPayload(BaseModel):
    run_id: str
    code_location: str
    job: str


class TerminateRunPayload(BaseModel):
    run_id: str
    reason: str
