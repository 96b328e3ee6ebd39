"""What the control plane asks of agents: one model per request type, told apart by
``type`` (``AgentRequest``, a discriminated union), each with its payload."""

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field, TypeAdapter

from tether_api.enums import (
    RequestStatus,
    RequestType,
)
from tether_api.logs import FetchRunLogsPayload
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_api.ticks import EvaluateTickPayload


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
    # Set for a run started through the Nexus service: the calling Temporal workflow, which the
    # agent names in the RunWorkflow's details (its start has no Nexus link to carry it).
    caller_namespace: str | None = None
    caller_workflow_id: str | None = None


class TerminateRunPayload(BaseModel):
    run_id: str
    reason: str


class _Request(BaseModel):
    """What every request has, whatever its type."""

    id: str
    status: RequestStatus
    attempt: int = Field(description="How many times this request has been claimed.")
    queue: str = Field(default=DEFAULT_AGENT_QUEUE, description="The agent queue it is routed to.")
    created_at: datetime
    lease_expires_at: datetime | None = None


class SyncCodeLocationRequest(_Request):
    """Serve this generation of the code location (start or replace its code server)."""

    type: Literal[RequestType.SYNC_CODE_LOCATION]
    payload: SyncCodeLocationPayload

    def subject(self) -> str:
        """What it is about, for histories and logs."""
        return self.payload.code_location


class RemoveCodeLocationRequest(_Request):
    """Stop serving the code location (it was removed)."""

    type: Literal[RequestType.REMOVE_CODE_LOCATION]
    payload: RemoveCodeLocationPayload

    def subject(self) -> str:
        """What it is about, for histories and logs."""
        return self.payload.code_location


class LaunchRunRequest(_Request):
    """Start the run's worker."""

    type: Literal[RequestType.LAUNCH_RUN]
    payload: LaunchRunPayload

    def subject(self) -> str:
        """What it is about, for histories and logs."""
        return self.payload.run_id


class TerminateRunRequest(_Request):
    """Stop the run's worker."""

    type: Literal[RequestType.TERMINATE_RUN]
    payload: TerminateRunPayload

    def subject(self) -> str:
        """What it is about, for histories and logs."""
        return self.payload.run_id


class EvaluateTickRequest(_Request):
    """Evaluate a sensor's tick, or a schedule's whose run config is code."""

    type: Literal[RequestType.EVALUATE_TICK]
    payload: EvaluateTickPayload

    def subject(self) -> str:
        """What it is about, for histories and logs."""
        tick = self.payload
        return f"{tick.kind.value} {tick.tick.name} of {tick.code_location}"


class FetchRunLogsRequest(_Request):
    """Send a run's output, which this agent's host keeps, to the user call waiting for it."""

    type: Literal[RequestType.FETCH_RUN_LOGS]
    payload: FetchRunLogsPayload

    def subject(self) -> str:
        """What it is about, for histories and logs."""
        return self.payload.run_id


# One model per type, chosen by ``type`` (pydantic's discriminated union): a request's
# payload is read as its type's model, and a type an agent does not know fails validation.
# The JSON is the same as when ``payload`` was a plain object, so histories recorded with
# that shape still replay.
AgentRequest = Annotated[
    SyncCodeLocationRequest
    | RemoveCodeLocationRequest
    | LaunchRunRequest
    | TerminateRunRequest
    | EvaluateTickRequest
    | FetchRunLogsRequest,
    Field(discriminator="type"),
]
AGENT_REQUEST: TypeAdapter[AgentRequest] = TypeAdapter(AgentRequest)

# The payload model of each request type, for the control plane's queue.
RequestPayload = (
    SyncCodeLocationPayload
    | RemoveCodeLocationPayload
    | LaunchRunPayload
    | TerminateRunPayload
    | EvaluateTickPayload
    | FetchRunLogsPayload
)
_TYPE_OF_PAYLOAD: dict[object, RequestType] = {
    model.model_fields["payload"].annotation: get_args(model.model_fields["type"].annotation)[0]
    for model in get_args(get_args(AgentRequest)[0])
}


def request_type(payload: RequestPayload) -> RequestType:
    """The type of the request that carries this payload."""
    return _TYPE_OF_PAYLOAD[type(payload)]
