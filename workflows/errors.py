"""Turning activity failures into one line a person can act on."""

from temporalio.exceptions import ActivityError, ApplicationError, FailureError


def fix_and_redeploy(name: str) -> str:
    """What a location whose definitions do not load waits for (its workflow's state and the
    activity that reports the error both say it)."""
    return f"fix the code and run `tether redeploy {name}`"


def failure_message(exc: BaseException) -> str:
    """The message of the failure an activity raised: the ActivityError around it says only
    that an activity failed, and the causes under it (e.g. the Docker SDK's HTTP error under
    a launch error) are the details the activity already put into its own message."""
    current: BaseException | None = exc
    while isinstance(current, ActivityError):
        current = current.__cause__
    if current is None:
        return str(exc)
    if isinstance(current, ApplicationError | FailureError):
        return current.message
    return str(current) or type(current).__name__
