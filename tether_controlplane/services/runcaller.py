"""The Temporal workflow that started a run through Tether's Nexus service, as the run's
``caller_*`` columns hold it."""

from tether_api.user_api import RunCaller
from tether_controlplane.tables import RunRow


def caller_of(row: RunRow) -> RunCaller | None:
    if row.caller_workflow_id is None or row.caller_namespace is None:
        return None
    return RunCaller(
        namespace=row.caller_namespace,
        workflow_id=row.caller_workflow_id,
        run_id=row.caller_run_id,
        workflow_type=row.caller_workflow_type,
        service_endpoint=row.caller_endpoint,
    )


def record(row: RunRow, caller: RunCaller) -> None:
    row.caller_namespace = caller.namespace
    row.caller_workflow_id = caller.workflow_id
    row.caller_run_id = caller.run_id
    row.caller_workflow_type = caller.workflow_type
    row.caller_endpoint = caller.service_endpoint
