"""State and kind enumerations shared by every Tether component."""

from enum import StrEnum


class CodeLocationStatus(StrEnum):
    PENDING = "PENDING"
    STARTING = "STARTING"
    LOADING = "LOADING"
    RUNNING = "RUNNING"
    UPDATING = "UPDATING"
    ERROR = "ERROR"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"


TERMINAL_RUN_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED})
# Runs that hold a slot of the deployment's concurrency limit.
ACTIVE_RUN_STATUSES = frozenset({RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING})


class RequestType(StrEnum):
    SYNC_CODE_LOCATION = "SYNC_CODE_LOCATION"
    REMOVE_CODE_LOCATION = "REMOVE_CODE_LOCATION"
    LAUNCH_RUN = "LAUNCH_RUN"
    TERMINATE_RUN = "TERMINATE_RUN"
    EVALUATE_TICK = "EVALUATE_TICK"  # a sensor's, or a schedule's whose config is code
    # A user asks for a run's output that its agent keeps (log forwarding 'local').
    FETCH_RUN_LOGS = "FETCH_RUN_LOGS"


class RequestStatus(StrEnum):
    PENDING = "PENDING"
    CLAIMED = "CLAIMED"
    DONE = "DONE"
    FAILED = "FAILED"


class EventType(StrEnum):
    RUN_START = "RUN_START"
    RUN_SUCCESS = "RUN_SUCCESS"
    RUN_FAILURE = "RUN_FAILURE"
    RUN_CANCELED = "RUN_CANCELED"
    STEP_START = "STEP_START"
    STEP_SUCCESS = "STEP_SUCCESS"
    STEP_FAILURE = "STEP_FAILURE"
    STEP_SKIPPED = "STEP_SKIPPED"
    STEP_CANCELED = "STEP_CANCELED"
    LOG = "LOG"
    ASSET_MATERIALIZATION = "ASSET_MATERIALIZATION"
    # Dagster code locations: a step's retry within the run (RetryPolicy, RetryRequested),
    # and what assets report besides materializations.
    STEP_UP_FOR_RETRY = "STEP_UP_FOR_RETRY"
    STEP_RESTARTED = "STEP_RESTARTED"
    ASSET_OBSERVATION = "ASSET_OBSERVATION"
    ASSET_CHECK_EVALUATION = "ASSET_CHECK_EVALUATION"


# The event types that end a run, and the status each one means.
FINAL_EVENT_STATUS: dict[EventType, RunStatus] = {
    EventType.RUN_SUCCESS: RunStatus.SUCCESS,
    EventType.RUN_FAILURE: RunStatus.FAILURE,
    EventType.RUN_CANCELED: RunStatus.CANCELED,
}


class StepStatus(StrEnum):
    """A step's state in a run, as its events tell it (see tether_api.steps)."""

    PENDING = "PENDING"  # in the job, no event yet
    RUNNING = "RUNNING"  # started, not ended (or its worker died first)
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"


# The event types that end a step, and the status each one means.
STEP_END_STATUS: dict[EventType, StepStatus] = {
    EventType.STEP_SUCCESS: StepStatus.SUCCESS,
    EventType.STEP_FAILURE: StepStatus.FAILURE,
    EventType.STEP_SKIPPED: StepStatus.SKIPPED,
    EventType.STEP_CANCELED: StepStatus.CANCELED,
}


class AutomationStatus(StrEnum):
    """Whether a schedule's ticks, or a sensor's evaluations, happen now."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class MissedTicks(StrEnum):
    """What a schedule does with the ticks that passed while the scheduler was not running."""

    LATEST = "latest"  # run the most recent one, record the others as skipped
    ALL = "all"  # run each of them (at most MAX_CATCH_UP_TICKS)
    SKIP = "skip"  # run none; record them as skipped


class TickStatus(StrEnum):
    SUCCESS = "SUCCESS"  # a run was created
    SKIPPED = "SKIPPED"  # missed, and the schedule's policy does not run it
    FAILURE = "FAILURE"  # the run could not be created: the error says why
    EVALUATING = "EVALUATING"  # sent to the code server; its answer is not in yet


class TickKind(StrEnum):
    """What a tick evaluated in the code server belongs to."""

    SENSOR = "sensor"
    SCHEDULE = "schedule"


class CodeLocationKind(StrEnum):
    """What a code location's code is written with."""

    TETHER = "tether"  # Tether's SDK: a tether_sdk.Definitions
    DAGSTER = "dagster"  # a Dagster project: a dagster.Definitions (tether[dagster] in its image)


class SensorKind(StrEnum):
    STANDARD = "standard"  # a function of its cursor, called at its interval
    RUN_STATUS = "run_status"  # called for each run of the jobs it watches that ended


class RetryOn(StrEnum):
    """Which failures of a run start a new attempt."""

    ANY = "any"  # a failed step, or the run worker dying
    WORKER_DIED = "worker_died"  # only the run worker dying (killed, lost, out of memory)


class FailureCause(StrEnum):
    """Why a run ended FAILURE, as far as the control plane can tell."""

    RUN_FAILED = "run_failed"  # the worker reported it: a step failed, or the code or config
    WORKER_DIED = "worker_died"  # no final event: it exited, was killed, or went silent


# Its name before sensors had it too; kept for code that imports it (the SDK's own
# ``default_status=`` arguments take either, or the plain strings).
ScheduleStatus = AutomationStatus
