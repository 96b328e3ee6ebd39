"""Whose a launched code server is, asked of its location's workflow: shared by the sweeps an
agent runs at start (orphaned containers; code servers started twice across hosts). It never
imports the Docker launcher, so a process agent never loads the Docker SDK."""

import asyncio
import logging

from temporalio.client import Client
from temporalio.service import RPCError

from activities.launchers.process import ProcessLauncher
from workflows import names
from workflows.models import CodeLocationState

log = logging.getLogger("tether.agent.ownership")

QUERY_TIMEOUT_SECONDS = 30


async def location_state(temporal: Client, workflow_id: str) -> CodeLocationState | None:
    """The location workflow's state, or None when it cannot be asked (then keep things)."""
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        return await asyncio.wait_for(
            handle.query(names.QUERY_STATE, result_type=CodeLocationState),
            timeout=QUERY_TIMEOUT_SECONDS,
        )
    except (RPCError, TimeoutError) as exc:
        log.warning("%s did not answer its state query: %s", workflow_id, exc)
        return None


def served_elsewhere(state: CodeLocationState, label: str, host_queue: str | None) -> bool:
    """True when the workflow's serving server has this label but runs on another agent's
    host: a copy here was started by a launch whose agent died before it was recorded, and
    the retry started the one that counts elsewhere."""
    server = state.server
    return (
        server is not None
        and server.label == label
        and server.host_queue is not None
        and host_queue is not None
        and server.host_queue != host_queue
    )


async def stop_stray_code_servers(
    launcher: ProcessLauncher,
    temporal: Client,
    organization: str,
    deployment: str,
    host_queue: str,
) -> list[str]:
    """Stop this host's running code servers that their workflow records on another host;
    returns their labels. (The Docker launcher's orphan sweep applies the same rule.)"""
    prefix = names.code_location_workflow_id(organization, deployment, "")
    stopped = []
    for label in await asyncio.to_thread(launcher.labels):
        if not label.startswith(prefix) or "#" not in label:
            continue
        handle = await asyncio.to_thread(launcher.find, label)
        if handle is None:
            continue  # not running
        state = await location_state(temporal, label.rsplit("#", 1)[0])
        if state is None or not served_elsewhere(state, label, host_queue):
            continue
        await asyncio.to_thread(launcher.stop, handle, 10.0)
        await asyncio.to_thread(launcher.cleanup, handle)
        stopped.append(label)
    return stopped
