"""Timeouts and retry policies of activities, in one place."""

from datetime import timedelta

from temporalio.common import RetryPolicy

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
