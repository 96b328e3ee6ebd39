"""Tether's Nexus service, ``tether.v1.Runs``: the contract a Temporal workflow of yours uses to
run a Tether job and await its outcome, durably, without polling the REST API.

Import it in the worker of your calling workflow (it needs only ``nexusrpc`` and pydantic)::

    from tether_api.nexus import RunJobInput, TetherRuns

    runs = workflow.create_nexus_client(service=TetherRuns, endpoint="tether-prod")
    result = await runs.execute_operation(
        TetherRuns.run_job,
        RunJobInput(code_location="etl", job="daily", run_config={...}),
        schedule_to_close_timeout=timedelta(hours=2),
    )

``run_job`` completes with a ``RunJobResult`` when the run succeeds. A run that fails or is
canceled fails the operation: the caller gets a ``NexusOperationError`` whose cause is an
``ApplicationError`` of type ``RUN_FAILED_ERROR`` or ``RUN_CANCELED_ERROR``, its message the failed
step's error and its first detail the ``RunJobResult``. Cancelling the operation (or the caller
workflow) terminates the run. Use Temporal's pydantic data converter on the caller's side too
(``temporalio.contrib.pydantic.pydantic_data_converter``).

The service's name and its operations' names are a wire contract: they are in every caller's
history. Add operations and optional fields; never rename or remove one.
"""

from datetime import datetime
from typing import Any

import nexusrpc
from pydantic import BaseModel, ConfigDict, Field

from tether_api.enums import RunStatus, StepStatus

SERVICE_NAME = "tether.v1.Runs"

# ApplicationError types a failed ``run_job`` carries (the cause of the caller's
# NexusOperationError), for callers that handle them apart.
RUN_FAILED_ERROR = "TetherRunFailed"
RUN_CANCELED_ERROR = "TetherRunCanceled"
# The run could not be created: an unknown location or job, a config its job refuses.
RUN_REFUSED_ERROR = "TetherRunRefused"


class _Model(BaseModel):
    # Unknown fields are refused, as for the REST API: a misspelt key is an error, not ignored.
    model_config = ConfigDict(extra="forbid")


class RunJobInput(_Model):
    """What to run: as ``POST /api/v1/deployments/{dep}/runs`` takes it. The deployment is the
    endpoint's: one endpoint serves one deployment."""

    code_location: str = Field(description="The code location that defines the job.")
    job: str = Field(description="The job's name in that location.")
    run_config: dict[str, Any] = Field(
        default_factory=dict, description="The job's config; checked against its schema."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="The run's tags.")


class StepOutcome(_Model):
    name: str = Field(description="The step's name.")
    status: StepStatus = Field(description="How it ended (PENDING: never reached).")
    duration_seconds: float | None = Field(default=None, description="How long it ran.")
    error: str | None = Field(default=None, description="A failed step's exception, one line.")


class Materialization(_Model):
    """An asset the run wrote: its key, the step that wrote it, and the metadata it reported
    (row counts, paths: what the step chose to say; never the data itself)."""

    asset_key: str = Field(description="The asset's key.")
    step: str | None = Field(default=None, description="The step that materialized it.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Its reported metadata.")


class RunJobResult(_Model):
    """A run's outcome, as the operation completes with it (or carries it in its failure)."""

    run_id: str = Field(description="The Tether run's ID.")
    deployment: str = Field(description="The deployment it ran in.")
    status: RunStatus = Field(description="SUCCESS, FAILURE or CANCELED.")
    url: str = Field(description="The run's page in Tether's web UI.")
    steps: list[StepOutcome] = Field(default_factory=list, description="Each step's outcome.")
    materializations: list[Materialization] = Field(
        default_factory=list, description="The assets the run materialized, in order."
    )
    error: str | None = Field(
        default=None, description="Why it failed: the failed step's error, or the run's."
    )
    attempts: int = Field(
        default=1, description="Runs it took: more than 1 when the job's retry policy retried it."
    )
    started_at: datetime | None = None
    ended_at: datetime | None = None


class GetRunInput(_Model):
    run_id: str = Field(description="A Tether run's ID, in the endpoint's deployment.")


class RunInfo(_Model):
    """A run as it is now (``get_run``, ``terminate_run``)."""

    run_id: str
    deployment: str
    code_location: str
    job: str
    status: RunStatus
    status_message: str | None = None
    url: str
    created_at: datetime
    ended_at: datetime | None = None


class TerminateRunInput(_Model):
    run_id: str = Field(description="A run started through this service.")


@nexusrpc.service(name=SERVICE_NAME)
class TetherRuns:
    """Run Tether jobs from Temporal workflows."""

    run_job: nexusrpc.Operation[RunJobInput, RunJobResult] = nexusrpc.Operation(name="run_job")
    get_run: nexusrpc.Operation[GetRunInput, RunInfo] = nexusrpc.Operation(name="get_run")
    terminate_run: nexusrpc.Operation[TerminateRunInput, RunInfo] = nexusrpc.Operation(
        name="terminate_run"
    )
