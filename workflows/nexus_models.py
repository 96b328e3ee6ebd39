"""Inputs and outputs of NexusRunWorkflow and its activities (see workflows/nexus_run.py).

Like workflows/models.py, nothing secret: these are recorded in histories. Unlike the rest of
Tether's histories, ``NexusRunOutcome.result`` may hold text from user code (a failed step's
error, materialization metadata): it is the outcome the Nexus caller asked for, and becomes
the operation's result in the caller's history too. The agent's ``nexus_outcome`` setting
'ids' leaves that text out (README, "What a workflow's history holds").
"""

from enum import StrEnum

from pydantic import BaseModel, Field

from tether_api.nexus import RunJobResult


class NexusOutcomeDetail(StrEnum):
    FULL = "full"  # steps' errors and materializations' metadata, as the control plane has them
    IDS = "ids"  # statuses, names, IDs and the run's URL; no text from user code


class NexusCaller(BaseModel):
    """Who started the operation, from the Nexus request's links (set by Temporal)."""

    namespace: str
    workflow_id: str
    run_id: str | None = None
    workflow_type: str | None = None
    service_endpoint: str | None = None


class NexusRunInput(BaseModel):
    organization: str
    deployment: str
    run_id: str = Field(description="The Tether run, already created by the operation's start.")
    code_location: str
    job: str
    caller: NexusCaller | None = None
    detail: NexusOutcomeDetail = NexusOutcomeDetail.FULL
    # Set by continue-as-new: the attempts followed so far (a job's retry policy).
    attempts: int = 1


class AwaitNexusRunInput(BaseModel):
    run_id: str
    detail: NexusOutcomeDetail = NexusOutcomeDetail.FULL


class NexusRunOutcome(BaseModel):
    """A final run: its result, or the retry the control plane started for it to follow."""

    retry_run_id: str | None = Field(
        default=None, description="The run that retries this one: await it instead."
    )
    result: RunJobResult | None = None


class TerminateNexusRunInput(BaseModel):
    run_id: str
    reason: str


class TerminateNexusRunOutput(BaseModel):
    terminated: bool = Field(description="False when the run had already ended.")
