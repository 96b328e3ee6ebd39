"""Who asked a code location's workflow for a redeploy straight through Temporal.

A signal or an update reaches the workflow with no word of its sender; the workflow's history
has it (the identity each event records: a worker's ``pid@host``, the temporal CLI's, a
client's). Read here, in the activity that records the redeploy's new generation, for the
audit log: the newest ``redeploy`` signal or accepted ``redeploy_and_wait`` update is the one
being recorded (the workflow records each before the next deploy starts).
"""

import logging
from dataclasses import dataclass
from typing import Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from workflows import names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedeploySender:
    identity: str
    via: Literal["signal", "update"]


async def find_sender(
    client: Client, workflow_id: str | None, run_id: str | None
) -> RedeploySender | None:
    """The newest redeploy's sender in the workflow run's history, or None (none found, or
    the history could not be read: the redeploy is still recorded, with no identity)."""
    found: RedeploySender | None = None
    if workflow_id is None:
        return None  # not in a workflow's activity (tests of the activity alone)
    try:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                signaled = event.workflow_execution_signaled_event_attributes
                if signaled.signal_name == names.SIGNAL_REDEPLOY:
                    found = RedeploySender(signaled.identity, "signal")
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                request = event.workflow_execution_update_accepted_event_attributes.accepted_request
                if request.input.name == names.UPDATE_REDEPLOY:
                    found = RedeploySender(request.meta.identity, "update")
    except Exception as exc:  # the audit entry loses its identity, nothing else
        log.warning("could not read %s's history for the redeploy's sender: %r", workflow_id, exc)
        return found
    return found
