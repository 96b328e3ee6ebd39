"""Names shared by workflows, activities, the worker and the CLI: workflow types and IDs,
activity names, signal/query/update names and patch IDs. Strings only, so tests can stand in
for activities by registering functions under the same names. Nothing else spells them.

Workflow types, signals, queries, updates and patch IDs are recorded in every history and
typed by people (``temporal workflow signal --name redeploy``, ``WorkflowType = 'RunWorkflow'``
in a visibility query): renaming one breaks the workflows in flight and those commands."""

from tether_api.names import DEFAULT_AGENT_QUEUE

# --- workflow types (``@workflow.defn(name=...)``) -------------------------------------------

AGENT_WORKFLOW = "AgentWorkflow"
CODE_LOCATION_WORKFLOW = "CodeLocationWorkflow"
RUN_WORKFLOW = "RunWorkflow"
TICK_WORKFLOW = "TickWorkflow"
# The workflow behind one `run_job` operation of the Nexus service tether.v1.Runs.
NEXUS_RUN_WORKFLOW = "NexusRunWorkflow"

# --- workflow IDs: derived from what they model, never random --------------------------------


def agent_workflow_id(organization: str, deployment: str, agent_name: str) -> str:
    return f"agent:{organization}:{deployment}:{agent_name}"


def code_location_workflow_id(organization: str, deployment: str, name: str) -> str:
    return f"code-location:{organization}:{deployment}:{name}"


def run_workflow_id(run_id: str) -> str:
    return f"run:{run_id}"


def tick_workflow_id(
    organization: str, deployment: str, code_location: str, kind: str, name: str, tick_id: int
) -> str:
    """One tick of a sensor (or of a schedule whose config is code): its ID in the control
    plane is unique per kind, so a request delivered twice reaches the same workflow."""
    return f"tick:{organization}:{deployment}:{code_location}:{kind}:{name}:{tick_id}"


def nexus_run_workflow_id(run_id: str) -> str:
    """The `run_job` Nexus operation that awaits run ``run_id``. The run is created keyed by the
    caller's request ID, so a caller that retries its start gets the same run, and this ID
    the same workflow."""
    return f"nexus-run:{run_id}"


# --- task queues -----------------------------------------------------------------------------


def default_task_queue(organization: str, deployment: str) -> str:
    """The deployment's task queue base: its default agent queue's Temporal task queue."""
    return f"tether:{organization}:{deployment}"


def queue_task_queue(base: str, agent_queue: str | None) -> str:
    """The Temporal task queue of an agent queue: the base for the default queue (as before
    there were agent queues), ``{base}:{queue}`` for any other."""
    if not agent_queue or agent_queue == DEFAULT_AGENT_QUEUE:
        return base
    return f"{base}:{agent_queue}"


def host_task_queue(base: str, agent_name: str) -> str:
    """One agent's own task queue: what only its host can do goes there. Agent queue names
    cannot contain ':', so this never collides with one."""
    return f"{base}:host:{agent_name}"


def nexus_task_queue(base: str) -> str:
    """The deployment's Nexus task queue: a Nexus endpoint for the deployment targets it, and
    only agents with a Nexus token poll it (its workflows' activities need that token)."""
    return f"{base}:nexus:runs"


# --- activities ------------------------------------------------------------------------------

POLL_REQUESTS = "poll_requests"
DISPATCH_REQUEST = "dispatch_request"
POLL_AND_DISPATCH = "poll_and_dispatch"
SEND_AGENT_HEARTBEAT = "send_agent_heartbeat"

START_CODE_SERVER = "start_code_server"
WAIT_CODE_SERVER_READY = "wait_code_server_ready"
PUBLISH_SNAPSHOT = "publish_snapshot"
WATCH_CODE_SERVER = "watch_code_server"
STOP_CODE_SERVER = "stop_code_server"
REPORT_CODE_LOCATION_STATUS = "report_code_location_status"
NEW_GENERATION = "new_generation"
OTHER_LIVE_AGENTS = "other_live_agents"  # before a lost host's code server is replaced

PREPARE_RUN = "prepare_run"
LAUNCH_RUN_WORKER = "launch_run_worker"
WATCH_RUN_WORKER = "watch_run_worker"
STOP_RUN_WORKER = "stop_run_worker"
FINISH_RUN = "finish_run"
VALIDATE_RUN = "validate_run"  # on the code server's host
RELEASE_RUN_WORKER = "release_run_worker"  # on the run worker's host, once its outcome is known
WAIT_RUN_SETTLED = "wait_run_settled"  # the control plane's view, while the worker's host is lost

LOCATE_CODE_SERVER = "locate_code_server"  # TickWorkflow: where the code server is
EVALUATE_TICK = "evaluate_tick"  # on the code server's host (before the tick was held)
REPORT_TICK = "report_tick"
# On the code server's host: reads the tick's request, evaluates it, reports the answer to the
# control plane itself (no user text in its input or result).
EVALUATE_AND_REPORT_TICK = "evaluate_and_report_tick"

# NexusRunWorkflow: through the user API, with the agent's Nexus token (never the caller's).
CREATE_NEXUS_RUN = "create_nexus_run"
AWAIT_NEXUS_RUN = "await_nexus_run"  # long-polls the control plane until the run is final
TERMINATE_NEXUS_RUN = "terminate_nexus_run"  # the caller canceled its operation

# --- signals, queries, updates ---------------------------------------------------------------

SIGNAL_SYNC = "sync"  # a SYNC_CODE_LOCATION request: deploy this generation
SIGNAL_REDEPLOY = "redeploy"  # no argument: `temporal workflow signal --name redeploy`
SIGNAL_REMOVE = "remove"
UPDATE_REDEPLOY = "redeploy_and_wait"  # answers once the new server is RUNNING
QUERY_STATE = "state"

SIGNAL_TERMINATE = "terminate"  # RunWorkflow: stop the run worker, end CANCELED

SIGNAL_STOP = "stop"  # AgentWorkflow: end after the current poll (an agent retired)

# --- failure types an activity raises for its workflow to tell apart ------------------------

# validate_run: the code server it was sent to is no longer the location's; RunWorkflow then
# asks prepare_run again where the location serves.
CODE_SERVER_MOVED = "CodeServerMoved"

# --- patches (workflow.patched): each keeps histories recorded before it replaying ----------
# When each can be deprecated and removed: workflows/README.md, "Deprecations".

PATCH_REDEPLOY_NEW_GENERATION = "redeploy-records-a-new-generation"
PATCH_WAIT_WATCH_CANCELED = "run-waits-for-its-watch-to-be-canceled"
PATCH_SEARCH_ATTRIBUTES = "run-upserts-search-attributes"
# RunWorkflow: a terminate stops the worker at once; the watch's cancel completes meanwhile.
PATCH_STOP_BEFORE_WATCH_CANCELED = "run-stops-its-worker-before-the-watch-is-canceled"
# RunWorkflow: a validation sent to a code server that is gone asks again where the location
# serves (the activity fails with CodeServerMoved) instead of retrying the dead address.
PATCH_VALIDATE_FOLLOWS_LOCATION = "run-validation-follows-the-location"
# CodeLocationWorkflow: a load error the code server served waits for new code (a redeploy or
# a new generation) instead of restarting the server with backoff.
PATCH_LOAD_ERROR_WAITS = "load-error-waits-for-new-code"
# AgentWorkflow: one activity polls and hands each request to its workflow (no workflow task
# and local activity between the poll's answer and the dispatch).
PATCH_POLL_DISPATCHES = "agent-poll-dispatches"
# TickWorkflow: one activity on the code server's host evaluates and reports (the answer goes
# to the control plane, not through the history); no activity's message in its reports.
PATCH_TICK_HELD = "tick-evaluates-and-reports-on-host"
