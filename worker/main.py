"""Run the agent: connect to the control plane and Temporal, serve the workflows and
activities on the task queue, and keep this agent's AgentWorkflow running."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

from temporalio.client import Client, TLSConfig
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.agent import AgentActivities
from activities.code_locations import CodeLocationActivities
from activities.context import AgentContext
from activities.controlplane import ControlPlaneClient
from activities.launchers.base import Launcher, LaunchError
from activities.launchers.process import ProcessLauncher
from activities.runs import RunActivities
from tether_api.models import Agent, AgentHeartbeat
from worker.config import AgentConfig
from workflows.agent import AgentWorkflow
from workflows.code_location import CodeLocationWorkflow
from workflows.models import AgentWorkflowInput
from workflows.names import agent_workflow_id
from workflows.run import RunWorkflow

log = logging.getLogger("tether.agent")

WORKFLOWS = [AgentWorkflow, CodeLocationWorkflow, RunWorkflow]


class AgentStartupError(Exception):
    """The agent cannot start; the message says why and what to do."""


def tether_version() -> str:
    try:
        return version("tether")
    except PackageNotFoundError:
        return "unknown"


def default_task_queue(organization: str, deployment: str) -> str:
    return f"tether:{organization}:{deployment}"


def make_launcher(config: AgentConfig) -> Launcher:
    if config.launcher == "process":
        return ProcessLauncher(config.state_dir)
    if config.launcher == "docker":
        # Imported here: the Docker SDK is needed only by agents that launch containers.
        from activities.launchers.docker import DockerLauncher

        try:
            return DockerLauncher(config.docker, agent_name=config.agent_name)
        except LaunchError as exc:
            raise AgentStartupError(str(exc)) from exc
    raise AgentStartupError(
        f"unknown launcher {config.launcher!r}; this agent supports: process, docker"
    )


async def reap_orphans(launcher: Launcher, temporal: Client, organization: str, dep: str) -> None:
    """At start, remove the deployment's containers that no workflow owns any more."""
    if launcher.name != "docker":
        return  # (and a process agent never imports the Docker SDK)
    from activities.launchers.docker import DockerLauncher
    from activities.orphans import remove_orphans

    assert isinstance(launcher, DockerLauncher)

    try:
        removed = await remove_orphans(launcher, temporal, organization, dep)
    except Exception:  # never worth stopping the agent for
        log.exception("could not look for orphaned containers")
        return
    if removed:
        log.info("removed %d orphaned containers: %s", len(removed), ", ".join(removed))


async def connect_temporal(config: AgentConfig) -> Client:
    tls: TLSConfig | bool = False
    if config.temporal_tls.enabled:
        t = config.temporal_tls
        tls = TLSConfig(
            server_root_ca_cert=t.server_root_ca_cert.read_bytes()
            if t.server_root_ca_cert
            else None,
            client_cert=t.client_cert.read_bytes() if t.client_cert else None,
            client_private_key=t.client_private_key.read_bytes() if t.client_private_key else None,
            domain=t.domain,
        )
    try:
        return await Client.connect(
            config.temporal_address,
            namespace=config.namespace,
            data_converter=pydantic_data_converter,
            tls=tls,
            api_key=config.temporal_api_key.get_secret_value() if config.temporal_api_key else None,
        )
    except RuntimeError as exc:
        raise AgentStartupError(
            f"cannot connect to Temporal at {config.temporal_address} (namespace "
            f"{config.namespace}): {exc}; start one with `temporal server start-dev` or pass "
            "--temporal-address"
        ) from exc


async def register(control_plane: ControlPlaneClient, config: AgentConfig) -> Agent:
    """The first heartbeat: proves the token and learns the deployment it belongs to."""
    try:
        return await control_plane.heartbeat(
            AgentHeartbeat(
                agent_name=config.agent_name, version=tether_version(), launcher=config.launcher
            )
        )
    except ApplicationError as exc:
        raise AgentStartupError(f"{exc.message}; check --token (an agent token)") from exc
    except Exception as exc:
        raise AgentStartupError(
            f"cannot reach the control plane at {config.control_plane_url}: {exc!r}"
        ) from exc


async def run_agent(config: AgentConfig, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then shut down gracefully. Running code servers and run
    workers are left running: the next agent adopts them."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=config.blocking_threads, thread_name_prefix="launcher")
    )
    verify: bool | str = True
    if config.control_plane_ca_bundle:
        verify = str(config.control_plane_ca_bundle)
    control_plane = ControlPlaneClient(
        config.control_plane_url, config.token.get_secret_value(), verify=verify
    )
    try:
        agent = await register(control_plane, config)
        temporal = await connect_temporal(config)
        context = AgentContext(
            control_plane=control_plane,
            launcher=make_launcher(config),
            temporal=temporal,
            agent_name=config.agent_name,
            worker_control_plane_url=config.worker_control_plane_url or config.control_plane_url,
            code_location_settings=config.code_locations,
            run_settings=config.runs,
            version=tether_version(),
        )
        agent_activities = AgentActivities(context)
        location_activities = CodeLocationActivities(context)
        run_activities = RunActivities(context)
        task_queue = config.task_queue or default_task_queue(agent.organization, agent.deployment)
        worker = Worker(
            temporal,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=[
                agent_activities.poll_requests,
                agent_activities.dispatch_request,
                agent_activities.send_agent_heartbeat,
                location_activities.start_code_server,
                location_activities.wait_code_server_ready,
                location_activities.publish_snapshot,
                location_activities.watch_code_server,
                location_activities.stop_code_server,
                location_activities.report_code_location_status,
                location_activities.new_generation,
                run_activities.prepare_run,
                run_activities.launch_run_worker,
                run_activities.watch_run_worker,
                run_activities.stop_run_worker,
                run_activities.finish_run,
            ],
            max_concurrent_activities=config.max_concurrent_activities,
            graceful_shutdown_timeout=timedelta(seconds=config.graceful_shutdown_seconds),
        )
        async with worker:
            workflow_id = agent_workflow_id(agent.organization, agent.deployment, config.agent_name)
            await temporal.start_workflow(
                AgentWorkflow.run,
                AgentWorkflowInput(
                    organization=agent.organization,
                    deployment=agent.deployment,
                    agent_name=config.agent_name,
                    poll_wait_seconds=config.poll_wait_seconds,
                    heartbeat_interval_seconds=config.heartbeat_interval_seconds,
                ),
                id=workflow_id,
                task_queue=task_queue,
                # A restarted agent continues its workflow instead of starting another.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"agent {config.agent_name} of {agent.organization}/"
                f"{agent.deployment}",
            )
            log.info(
                "agent %s serving %s/%s on task queue %s (workflow %s)",
                config.agent_name,
                agent.organization,
                agent.deployment,
                task_queue,
                workflow_id,
            )
            # In the background: it asks workflows (served by this worker) who owns what.
            reaping = asyncio.create_task(
                reap_orphans(context.launcher, temporal, agent.organization, agent.deployment)
            )
            await stop.wait()
            reaping.cancel()
            log.info("agent %s shutting down", config.agent_name)
        await location_activities.aclose()
        await run_activities.aclose()
    finally:
        await control_plane.aclose()
