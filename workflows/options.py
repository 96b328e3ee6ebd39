"""Timeouts and retry policies of activities, in one place."""

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

from workflows.handles import Handle

# Control plane calls and launcher operations: retried until they succeed (a control plane
# that is down for minutes loses nothing), with backoff capped at 10 s. Errors that retrying
# cannot fix are raised as non-retryable by the activities.
PERSISTENT = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
)

# One control plane call or one short launcher operation.
SHORT = timedelta(seconds=30)

# Long activities heartbeat this often at least; a dead worker's activity is retried on
# another worker (or the restarted one) after this long.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def on_host(handle: Handle, lost_after: float) -> dict[str, Any]:
    """Activity options for work bound to the host a process runs on: its agent's own task
    queue, and a schedule-to-start timeout after which that agent counts as lost (Temporal
    does not retry that timeout: nobody else could do the work)."""
    if handle.host_queue is None:
        return {}  # recorded before agents had their own queue: the workflow's queue
    return {"task_queue": handle.host_queue, "schedule_to_start_timeout": seconds(lost_after)}


def host_lost(exc: BaseException) -> bool:
    """True when an activity failed because no agent picked it up from a host's queue."""
    cause = exc.cause if isinstance(exc, ActivityError) else None
    return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START
