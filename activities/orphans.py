"""Removing orphaned containers when an agent starts: containers of this deployment that no
workflow owns any more (their workflow ended, or moved on to a newer code server while the
agent was down). Everything else is left alone: a container whose owner cannot be asked is
kept, since adopting a healthy container is the whole point of a restart."""

import asyncio
import logging

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.launchers.docker import DockerLauncher, ManagedContainer
from activities.launchers.docker_pool import CLAIM_PREFIX, IDLE_PREFIX, POOL_KIND
from activities.launchers.docker_settings import LABEL_KIND, LABEL_LABEL, LABEL_WORKFLOW_ID
from activities.ownership import location_state, served_elsewhere

log = logging.getLogger("tether.agent.orphans")


async def remove_orphans(
    launcher: DockerLauncher,
    temporal: Client,
    organization: str,
    deployment: str,
    host_queue: str | None = None,
) -> list[str]:
    """Remove the deployment's orphaned containers; returns their names. With
    ``host_queue`` (this agent's), a code server its workflow records on another agent's
    host is an orphan too: a second copy from a launch retried elsewhere."""
    containers = await asyncio.to_thread(launcher.managed, organization, deployment)
    # Asked all at once: a query to a location's workflow may wait out the dead agent's
    # sticky queue, which must not hold up the removal of plain orphans.
    owned = await asyncio.gather(*(_owned(temporal, c, host_queue) for c in containers))
    removed = []
    for container, is_owned in zip(containers, owned, strict=True):
        if is_owned or _kept_for_debugging(launcher, container):
            continue
        await asyncio.to_thread(launcher.remove_container, container.id)
        removed.append(container.name)
    return removed


async def _owned(
    temporal: Client, container: ManagedContainer, host_queue: str | None = None
) -> bool:
    workflow_id = container.labels.get(LABEL_WORKFLOW_ID)
    if not workflow_id:
        return True  # not ours to judge
    if container.labels.get(LABEL_KIND) == POOL_KIND and not container.name.startswith(
        (IDLE_PREFIX, CLAIM_PREFIX)
    ):
        return True  # a pooled container running a run: its RunWorkflow removes it
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        log.warning(
            "kept %s: could not ask Temporal about %s: %s", container.name, workflow_id, exc
        )
        return True
    if description.status != WorkflowExecutionStatus.RUNNING:
        return False
    if container.labels.get(LABEL_KIND) != "code-server":
        return True  # a running RunWorkflow owns its worker
    state = await location_state(temporal, workflow_id)
    if state is None:
        return True  # cannot tell: kept
    label = container.labels.get(LABEL_LABEL, "")
    if served_elsewhere(state, label, host_queue):
        return False
    serving = state.server is not None and state.server.label == label
    # The server being started right now (its deploy number is the latest) is owned too.
    starting = label == f"{workflow_id}#{state.deploys}"
    return serving or starting


def _kept_for_debugging(launcher: DockerLauncher, container: ManagedContainer) -> bool:
    failed_run = (
        container.labels.get(LABEL_KIND) == "run-worker"
        and not container.running
        and container.exit_code not in (0, None)
    )
    return failed_run and launcher.settings.keep_failed_runs
