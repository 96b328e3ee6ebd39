"""Where a code location's code server is: its workflow's ``state`` query answers."""

from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.context import AgentContext
from workflows import names
from workflows.models import CodeLocationState


async def location_state(
    ctx: AgentContext, organization: str, deployment: str, code_location: str
) -> CodeLocationState:
    """The location workflow's state; a retryable ``CodeLocationNotReady`` while the location
    has no workflow yet."""
    workflow_id = names.code_location_workflow_id(organization, deployment, code_location)
    handle = ctx.temporal.get_workflow_handle(workflow_id)
    try:
        return await handle.query(names.QUERY_STATE, result_type=CodeLocationState)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ApplicationError(
                f"code location {code_location} is not deployed yet (no workflow "
                f"{workflow_id}); waiting for it",
                type="CodeLocationNotReady",
            ) from exc
        raise
