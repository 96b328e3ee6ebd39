"""Names shared by workflows, activities, the worker and the CLI: workflow IDs, activity
names, and signal/query/update names. Strings only, so tests can stand in for activities by
registering functions under the same names."""

# --- workflow IDs: derived from what they model, never random --------------------------------


def agent_workflow_id(organization: str, deployment: str, agent_name: str) -> str:
    return f"agent:{organization}:{deployment}:{agent_name}"


def code_location_workflow_id(organization: str, deployment: str, name: str) -> str:
    return f"code-location:{organization}:{deployment}:{name}"


def run_workflow_id(run_id: str) -> str:
    return f"run:{run_id}"


# --- activities ------------------------------------------------------------------------------

POLL_REQUESTS = "poll_requests"
DISPATCH_REQUEST = "dispatch_request"
SEND_AGENT_HEARTBEAT = "send_agent_heartbeat"

START_CODE_SERVER = "start_code_server"
WAIT_CODE_SERVER_READY = "wait_code_server_ready"
PUBLISH_SNAPSHOT = "publish_snapshot"
WATCH_CODE_SERVER = "watch_code_server"
STOP_CODE_SERVER = "stop_code_server"
REPORT_CODE_LOCATION_STATUS = "report_code_location_status"
NEW_GENERATION = "new_generation"

PREPARE_RUN = "prepare_run"
LAUNCH_RUN_WORKER = "launch_run_worker"
WATCH_RUN_WORKER = "watch_run_worker"
STOP_RUN_WORKER = "stop_run_worker"
FINISH_RUN = "finish_run"

# --- signals, queries, updates ---------------------------------------------------------------

SIGNAL_SYNC = "sync"  # a SYNC_CODE_LOCATION request: deploy this generation
SIGNAL_REDEPLOY = "redeploy"  # no argument: `temporal workflow signal --name redeploy`
SIGNAL_REMOVE = "remove"
UPDATE_REDEPLOY = "redeploy_and_wait"  # answers once the new server is RUNNING
QUERY_STATE = "state"

SIGNAL_TERMINATE = "terminate"  # RunWorkflow: stop the run worker, end CANCELED

# --- patches (workflow.patched): each keeps histories recorded before it replaying ----------

PATCH_REDEPLOY_NEW_GENERATION = "redeploy-records-a-new-generation"
