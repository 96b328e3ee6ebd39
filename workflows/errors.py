"""Turning activity failures into one line a person can act on."""

from temporalio.exceptions import ActivityError, ApplicationError, FailureError


def failure_message(exc: BaseException) -> str:
    """The innermost failure's message: an activity's ApplicationError says what went wrong,
    the ActivityError around it only that an activity failed."""
    current: BaseException | None = exc
    message = str(exc)
    while current is not None:
        if isinstance(current, ApplicationError) or (
            isinstance(current, FailureError) and not isinstance(current, ActivityError)
        ):
            message = current.message
        elif not isinstance(current, ActivityError):
            message = str(current) or type(current).__name__
        current = current.__cause__
    return message
