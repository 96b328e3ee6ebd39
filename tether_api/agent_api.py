"""The agent API's bodies (``/api/v1/agent``): heartbeats, the request poll and its
acknowledgements, and what an agent reports about locations and runs."""

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from tether_api.agent_requests import AgentRequest
from tether_api.enums import (
    CodeLocationStatus,
    RunStatus,
)
from tether_api.locations import CodeLocation
from tether_api.names import DEFAULT_AGENT_QUEUE, Name
from tether_api.snapshot import DefinitionsSnapshot
from tether_api.user_api import Run
from tether_api.wire import (
    INT32,
    JSON_NUMBER,
    MAX_LOG_TAIL_LINES,
    MAX_MESSAGE_CHARS,
    JsonBool,
    JsonFloat,
    JsonInt,
    Text,
)


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
    requested_by: Text | None = Field(
        default=None,
        max_length=200,
        description="The Temporal identity that sent the redeploy (a worker's, the temporal "
        "CLI's, a client's), as the workflow's history records it; for the audit log. None: "
        "not known (an earlier agent, or a history the agent could not read).",
    )
    requested_via: Literal["signal", "update"] | None = Field(
        default=None, description="How it was sent: the `redeploy` signal or the update."
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


class RunLaunch(BaseModel):
    """What an agent needs to start a run's worker, in one call."""

    run: Run
    code_location: CodeLocation = Field(description="The run's code location, as deployed now.")
    token: str | None = Field(
        default=None,
        description="A fresh run token (revoking any earlier one), minted only while the run is "
        "STARTING: a run launched already, or finished, gets none.",
    )


class RunToken(BaseModel):
    token: str


class PoolAssignment(BaseModel):
    """What the Docker launcher writes, as one JSON line, to the stdin of a pooled run worker
    (``tether run-worker --wait-for-run``) to give it its run."""

    env: dict[str, str] = Field(
        description="Set before the run starts: TETHER_RUN_ID, TETHER_CONTROL_PLANE_URL, "
        "TETHER_RUN_TOKEN and the location's resolved environment."
    )
    run: Run | None = Field(default=None, description="The run, as the launch read it.")
