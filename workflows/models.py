"""Inputs and outputs of every workflow and activity: pydantic models, one per direction.

Nothing here may hold a secret: these values are recorded in workflow histories. Tokens and
secret environment values live in the worker's configuration and inside activities.
"""

from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from tether_api.agent_requests import AgentRequest
from tether_api.enums import CodeLocationStatus, RequestType, RunStatus, TickKind, TickStatus
from tether_api.ticks import EvaluateTickPayload, TickReport, TickRequest
from workflows.handles import Handle

# --- settings carried in workflow inputs (the worker fills them from its configuration) -----


class CodeLocationSettings(BaseModel):
    startup_timeout_seconds: float = Field(
        default=120, description="A code server must answer /health within this long."
    )
    health_check_interval_seconds: float = Field(
        default=5, description="Seconds between health checks of a RUNNING code server."
    )
    unhealthy_after_failures: int = Field(
        default=3, description="Consecutive failed health checks that make a server unhealthy."
    )
    restart_backoff_initial_seconds: float = Field(
        default=2, description="First wait before restarting a failed code server."
    )
    restart_backoff_max_seconds: float = Field(
        default=120, description="Longest wait between restarts; retries never stop."
    )
    stop_grace_seconds: float = Field(
        default=10, description="SIGTERM to SIGKILL grace when stopping a code server."
    )
    watch_slice_seconds: float = Field(
        default=3600,
        description="One watch activity lasts at most this long, then the workflow starts the "
        "next one (and may continue-as-new in between).",
    )
    host_lost_after_seconds: float = Field(
        default=60,
        description="A host-bound activity (watch, stop, logs) that no agent picks up from the "
        "host's own task queue within this long means that host's agent is lost.",
    )


class RunSettings(BaseModel):
    start_timeout_seconds: float = Field(
        default=300, description="Validation and launch must finish within this long."
    )
    stop_grace_seconds: float = Field(
        default=20, description="SIGTERM to SIGKILL grace when terminating a run worker."
    )
    watch_slice_seconds: float = Field(default=3600, description="See CodeLocationSettings.")
    max_runtime_tag: str = Field(
        default="tether/max_runtime",
        description="Run tag holding the longest a run may take, in seconds.",
    )
    image_tag: str = Field(
        default="tether/image",
        description="Run tag naming another image for the run's container (Docker launcher).",
    )
    host_lost_after_seconds: float = Field(
        default=60,
        description="A host-bound activity (watch, stop, logs) that no agent picks up from the "
        "host's own task queue within this long means that host's agent is lost.",
    )
    lost_host_check_seconds: float = Field(
        default=5,
        description="While a run worker's host is lost: how often the control plane is asked "
        "whether the worker's own heartbeats and final event have settled the run.",
    )
    search_attributes: bool = Field(
        default=False,
        description="Upsert Tether's search attributes (run status, job, location, "
        "deployment); the agent turns it on once it has checked they are registered.",
    )


# --- AgentWorkflow -----------------------------------------------------------------------------


class AgentWorkflowInput(BaseModel):
    organization: str
    deployment: str
    agent_name: str
    poll_wait_seconds: float = Field(default=20, description="Long-poll hold time.")
    max_requests: int = Field(default=20, description="Requests claimed per poll.")
    heartbeat_interval_seconds: float = Field(default=15)
    continue_as_new_after_events: int = Field(
        default=5000, description="History length after which the workflow continues as new."
    )


class PollInput(BaseModel):
    agent_name: str
    wait_seconds: float
    max_requests: int


class PollOutput(BaseModel):
    requests: list[AgentRequest]


class DispatchInput(BaseModel):
    organization: str
    deployment: str
    request: AgentRequest


class DispatchOutput(BaseModel):
    workflow_id: str | None = Field(description="The workflow the request was handed to.")
    action: str = Field(
        description="started (or joined the running workflow) | the signal sent | "
        "already-finished | ignored"
    )
    acknowledged: bool = Field(
        description="dispatch_request: False when the claim went stale (redelivered). "
        "poll_and_dispatch: always False, since the next poll acknowledges it."
    )


class PollDispatchInput(PollInput):
    organization: str
    deployment: str


class Dispatched(DispatchOutput):
    request_id: str
    type: RequestType
    subject: str = Field(description="What the request is about: a run, a code location, a tick.")
    error: str | None = Field(
        default=None,
        description="Why it was not dispatched: it stays unacknowledged and comes back when its "
        "lease expires (the control plane fails it as poison after repeated claims).",
    )


class PollDispatchOutput(BaseModel):
    dispatched: list[Dispatched] = Field(description="Each request the poll claimed, in order.")


class AgentHeartbeatInput(BaseModel):
    organization: str
    deployment: str
    agent_name: str


# --- CodeLocationWorkflow ----------------------------------------------------------------------


class CodeLocationWorkflowInput(BaseModel):
    organization: str
    deployment: str
    name: str
    generation: int = Field(description="The control plane's generation to deploy.")
    settings: CodeLocationSettings = Field(default_factory=CodeLocationSettings)
    carried: "CodeLocationState | None" = Field(
        default=None, description="State handed over by continue-as-new."
    )


class CodeLocationState(BaseModel):
    """What the location's workflow knows: the answer of the ``state`` query."""

    name: str
    status: CodeLocationStatus
    generation: int = Field(description="Generation requested by the control plane.")
    deployed_generation: int | None = Field(
        default=None, description="Generation the current server was started for."
    )
    server: Handle | None = Field(default=None, description="The serving code server.")
    address: str | None = Field(default=None, description="Its URL, e.g. http://127.0.0.1:4567.")
    message: str | None = None
    deploys: int = Field(default=0, description="Servers started so far; labels use it.")
    consecutive_failures: int = 0
    redeploy_pending: bool = False
    abandoned: list[Handle] = Field(
        default_factory=list,
        description="Servers on lost hosts, replaced already: stopped once their agent is back.",
    )
    waiting_for_new_code: bool = Field(
        default=False,
        description="ERROR that only new code can fix (the definitions failed to load): no "
        "restart until a redeploy or a new generation. False for an ERROR that is retried with "
        "backoff (a crash, a server that never answered).",
    )


class SyncSignal(BaseModel):
    generation: int


class RemoveSignal(BaseModel):
    generation: int | None = Field(
        default=None, description="Generation removed; a sync of a newer one cancels it."
    )


class StartCodeServerInput(BaseModel):
    organization: str
    deployment: str
    name: str
    label: str = Field(description="Deterministic label: workflow ID + '#' + deploy number.")
    generation: int | None = Field(
        default=None, description="The generation it serves (labels the container)."
    )


class StartCodeServerOutput(BaseModel):
    handle: Handle | None = None
    removed: bool = Field(default=False, description="The location was removed meanwhile.")


class WaitReadyInput(BaseModel):
    handle: Handle
    timeout_seconds: float


class WaitReadyOutput(BaseModel):
    address: str


class PublishSnapshotInput(BaseModel):
    name: str
    generation: int
    address: str
    handle: Handle = Field(description="The server, for its log lines if loading failed.")


class PublishSnapshotOutput(BaseModel):
    loaded: bool
    error: str | None = Field(
        default=None,
        description="Why it did not load, in the agent's words: the load error itself (user "
        "code's text) goes to the control plane only.",
    )
    jobs: int = 0
    needs_new_code: bool = Field(
        default=False,
        description="The code server served a load error (an import error, a missing file, a "
        "definition error): restarting it cannot help. False in results recorded before this "
        "existed, which are retried with backoff as they were.",
    )


class WatchInput(BaseModel):
    handle: Handle
    address: str | None = None
    interval_seconds: float
    unhealthy_after_failures: int = 3
    max_seconds: float


class WatchOutput(BaseModel):
    running: bool = Field(description="True when the slice ended with the process still fine.")
    reason: str | None = Field(default=None, description="Why it stopped being healthy.")
    exit_code: int | None = None


class StopInput(BaseModel):
    handle: Handle
    grace_seconds: float
    cleanup: bool = True


class StopOutput(BaseModel):
    exit_code: int | None = None


class OtherLiveAgentsInput(BaseModel):
    agent: str | None = Field(description="The agent that is not answering.")
    task_queue: str = Field(description="The task queue of the agent queue to serve.")


class OtherLiveAgentsOutput(BaseModel):
    agents: list[str] = Field(description="Other live agents serving that agent queue.")


class NewGenerationInput(BaseModel):
    name: str
    reason: str
    follows: int | None = Field(
        default=None,
        description="The generation the new one follows (the workflow's): the control plane "
        "records a new generation only while the location's is still that one, so a retry "
        "after a lost answer records none. None (scheduled by an earlier version): always one.",
    )


class NewGenerationOutput(BaseModel):
    generation: int


class LocationStatusInput(BaseModel):
    name: str
    status: CodeLocationStatus
    generation: int | None = Field(description="None: applies whatever the generation.")
    message: str | None = None
    log_handle: Handle | None = Field(
        default=None, description="Attach this process's last log lines (read in the activity)."
    )


# --- RunWorkflow -------------------------------------------------------------------------------


class RunWorkflowInput(BaseModel):
    organization: str
    deployment: str
    run_id: str
    code_location: str
    job: str
    settings: RunSettings = Field(default_factory=RunSettings)


class TerminateSignal(BaseModel):
    reason: str = "terminated"


class PrepareRunInput(BaseModel):
    organization: str
    deployment: str
    run_id: str
    code_location: str
    max_runtime_tag: str


class PrepareRunOutput(BaseModel):
    proceed: bool = Field(description="False: the run must not start (see status, message).")
    status: RunStatus
    message: str | None = Field(
        default=None,
        description="The agent's words; a refusal's reasons (the code server's, a load "
        "error) are reported to the control plane by the activity, not returned.",
    )
    steps: list[str] = Field(default_factory=list)
    max_runtime_seconds: float | None = None
    validate_on: str | None = Field(
        default=None,
        description="Not validated yet: the code server runs on another agent's host, whose "
        "task queue this is; validate_run must run there.",
    )
    address: str | None = Field(default=None, description="The code server, with validate_on.")
    code_server_label: str | None = Field(
        default=None,
        description="The label of the code server that validated the run, when it runs on "
        "the validating agent's host: a warm launch forks the worker from it.",
    )
    code_server_generation: int | None = Field(
        default=None, description="The generation that code server was started for."
    )


class ValidateRunInput(BaseModel):
    run_id: str
    code_location: str
    address: str
    max_runtime_seconds: float | None = None
    organization: str | None = Field(
        default=None,
        description="With ``deployment``: where to ask for the location's current code server "
        "when this one does not answer (None: scheduled by an earlier version, which does not).",
    )
    deployment: str | None = None


class LaunchRunWorkerInput(BaseModel):
    organization: str
    deployment: str
    run_id: str
    code_location: str
    label: str
    code_server_label: str | None = Field(
        default=None,
        description="From prepare_run: the local code server a warm launch forks from (none: "
        "the launch asks the location's workflow).",
    )
    code_server_generation: int | None = Field(
        default=None,
        description="Its generation: a warm launch forks from it only when the location's "
        "current generation is that one.",
    )


class WatchRunWorkerOutput(BaseModel):
    """What the workflow needs to decide, and nothing the run printed: the watch reports an
    unreported exit, with the output's last lines where the log settings allow, itself.
    (Histories recorded before this also hold ``log_tail``; it is ignored.)"""

    running: bool
    exit_code: int | None = None
    detail: str | None = Field(default=None, description="The launcher's account of the exit.")


class RunOutcome(StrEnum):
    """How RunWorkflow saw the run end, for ``finish_run`` to reconcile. The values are the
    strings sent before this was an enum (a StrEnum serialises as its value)."""

    EXITED = "exited"  # the run worker exited (its exit code and the launcher's account)
    TERMINATED = "terminated"  # a terminate signal (the worker is stopped, if it runs)
    TIMED_OUT = "timed-out"  # the start timeout, or the run's max runtime
    NOT_STARTED = "not-started"  # refused by validation, or a step before the launch failed
    # The run worker's host is lost and the control plane settled the run (its final event,
    # or its heartbeats stopping).
    SETTLED = "settled"


class FinishRunInput(BaseModel):
    run_id: str
    label: str = Field(description="The run worker's label: found and stopped if no handle.")
    handle: Handle | None
    outcome: RunOutcome
    exit_code: int | None = None
    message: str | None = None
    detail: str | None = Field(default=None, description="The launcher's account of the exit.")


class RunResult(BaseModel):
    run_id: str
    status: RunStatus
    message: str | None = Field(
        default=None,
        description="The agent's own account of the end (or a terminate's reason), never the "
        "control plane's status message, which may quote the run's output.",
    )
    exit_code: int | None = None
    release_on_host: bool = Field(
        default=False,
        description="The worker runs on another agent's host: release_run_worker must run "
        "there to remove what is left of it.",
    )


class ReleaseInput(BaseModel):
    handle: Handle
    succeeded: bool


class RunSettledInput(BaseModel):
    run_id: str
    interval_seconds: float
    max_seconds: float


class RunStatusOutput(BaseModel):
    status: RunStatus
    message: str | None = Field(
        default=None, description="Unused: the status message stays in the control plane."
    )


# --- TickWorkflow ---------------------------------------------------------------------------


class TickWorkflowInput(BaseModel):
    organization: str
    deployment: str
    payload: EvaluateTickPayload | None = Field(
        default=None,
        description="Dispatched by an agent of an earlier version: the whole request (with the "
        "cursor and a run-status sensor's ended runs). None when ``held_payload`` is given.",
    )
    held_payload: EvaluateTickPayload | None = Field(
        default=None,
        description="The tick's identity only (cursor None, no ended runs: user text stays out "
        "of the history); the activity that evaluates it reads the request from the control "
        "plane. Under a name of its own, so that an agent of an earlier version, whose input "
        "requires ``payload``, cannot read it: its workflow task fails and is retried until an "
        "agent of this version takes it, instead of evaluating the sensor without its cursor.",
    )
    host_lost_after_seconds: float = Field(
        default=60, description="See CodeLocationSettings.host_lost_after_seconds."
    )
    locate_for_seconds: float = Field(
        default=60,
        description="How long to wait for the location's code server to be RUNNING before the "
        "tick fails.",
    )

    @model_validator(mode="after")
    def _one_payload(self) -> "TickWorkflowInput":
        if (self.payload is None) == (self.held_payload is None):
            raise ValueError("give exactly one of payload and held_payload")
        return self

    @property
    def tick(self) -> EvaluateTickPayload:
        """The tick, whichever way it was dispatched."""
        found = self.held_payload or self.payload
        assert found is not None  # _one_payload
        return found

    @property
    def held(self) -> bool:
        return self.held_payload is not None


class LocateInput(BaseModel):
    organization: str
    deployment: str
    code_location: str


class LocateOutput(BaseModel):
    address: str
    host_queue: str | None = Field(
        default=None, description="The code server's host's task queue (None: this worker's)."
    )


class EvaluateTickInput(BaseModel):
    code_location: str
    address: str
    tick: TickRequest


class ReportTickInput(BaseModel):
    kind: TickKind
    tick_id: int
    report: TickReport


# A failed tick's error as a TickWorkflow's result and activity results give it: the error
# itself (the user function's message, a refused run request) stays in the control plane.
TICK_ERROR_RECORDED = "the tick failed; its error is recorded on the tick in the control plane"


class EvaluateAndReportTickInput(BaseModel):
    payload: EvaluateTickPayload = Field(description="The workflow input's.")
    held: bool = Field(description="See TickWorkflowInput.held.")
    address: str = Field(description="The code server's.")
    workflow_id: str = Field(description="Recorded on the tick.")
    report_for_seconds: float = Field(
        description="How long the activity keeps trying the control plane through an outage "
        "(reading the request, reporting the answer)."
    )


class TickReported(BaseModel):
    """What the control plane made of a tick, as much as the workflow needs: the answer (run
    requests, cursor, the user function's error) went from the activity to the control
    plane, never through the history."""

    status: TickStatus
    run_ids: list[str] = Field(default_factory=list, description="Runs the tick created.")
    already_final: bool = Field(
        default=False, description="The tick had ended before: the report changed nothing."
    )
    error: str | None = Field(
        default=None, description="A failed tick's: TICK_ERROR_RECORDED, never the error."
    )


CodeLocationWorkflowInput.model_rebuild()
