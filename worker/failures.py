"""What an activity's failure may say in a workflow's history: the agent's own words.

An activity failure is recorded in the workflow's history (its message, its causes, its stack
trace), readable by anyone with access to the Temporal namespace. Tether's activities raise
``ApplicationError`` with messages written by the agent; user text (a run's output, a code
server's answer, a sensor's error) goes to the control plane, never into a failure. This
interceptor holds that line for what the activities do not raise on purpose:

- any other exception (a parse error quoting a code server's answer, a bug) becomes an
  ``ApplicationError`` of the same type name (so retry policies match as before) whose message
  names only the class and the activity; the original, with its text, goes to the agent's log;
- an ``ApplicationError``'s causes are dropped: its message already says what the cause
  meant, and a cause's own text (a library's exception) is not the agent's to vouch for.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

log = logging.getLogger("tether.agent.failures")


class AgentWordsOnly(Interceptor):
    """Registered on every worker of the agent (``worker/main.py``)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except ApplicationError as exc:
            raise without_causes(exc) from None
        except FailureError:
            # Temporal's own (a cancellation): its text is the SDK's.
            raise
        except Exception as exc:
            raise scrubbed(exc) from None


def without_causes(exc: ApplicationError) -> ApplicationError:
    """The same failure, as the history will record it: no cause chain."""
    if exc.__cause__ is not None:
        log.debug("activity failure's cause, left out of the history", exc_info=exc.__cause__)
    exc.__cause__ = None
    exc.__suppress_context__ = True
    return exc


def scrubbed(exc: BaseException) -> ApplicationError:
    """An unexpected exception, said without its message: its class and where it happened.
    The message is in the agent's log."""
    name = type(exc).__name__
    where = "an activity"
    if activity.in_activity():
        info = activity.info()
        where = f"activity {info.activity_type} (workflow {info.workflow_id})"
    log.warning(
        "%s failed with %s; the workflow's history names only the class", where, name, exc_info=exc
    )
    return ApplicationError(
        f"{name} in {where}; its message is in the agent's log (left out of the workflow's "
        "history, which may not hold text from user code)",
        type=name,
    )
