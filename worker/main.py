"""Run the agent: connect to the control plane and Temporal, serve the workflows and
activities on the task queue, and keep this agent's AgentWorkflow running."""

import asyncio
import logging
import socket
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from temporalio.client import Client, TLSConfig
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.context import AgentContext
from activities.controlplane import TOKEN_REJECTED, UNAVAILABLE, ControlPlaneClient
from activities.kept_logs import sweep_kept_logs_periodically
from activities.launchers import registry
from activities.launchers.base import Launcher, LaunchError
from activities.launchers.retention import sweep_periodically
from tether_api.agent_api import Agent, AgentHeartbeat
from worker import codec
from worker import metrics as agent_metrics
from worker.activity_set import AgentActivitySet
from worker.config import SETTINGS, AgentConfig, AgentConfigError
from worker.failures import AgentWordsOnly
from worker.nexus_worker import nexus_worker
from worker.search_attributes import (
    SearchAttributeCheckError,
    add_missing_search_attributes,
    how_to_add,
    missing_search_attributes,
)
from workflows.agent import AgentWorkflow
from workflows.code_location import CodeLocationWorkflow
from workflows.models import AgentWorkflowInput
from workflows.names import (
    agent_workflow_id,
    default_task_queue,
    host_task_queue,
    queue_task_queue,
)
from workflows.run import RunWorkflow
from workflows.tick import TickWorkflow

log = logging.getLogger("tether.agent")

WORKFLOWS = [AgentWorkflow, CodeLocationWorkflow, RunWorkflow, TickWorkflow]


# The exit code of an agent whose token the control plane rejected (revoked, expired):
# restarting it with the same token cannot help, so a supervisor may tell it from a crash.
EXIT_TOKEN_REJECTED = 3
# After a rejection, how much longer than graceful_shutdown_seconds the workers get to stop.
REJECTED_SHUTDOWN_MARGIN_SECONDS = 5.0


class AgentStartupError(Exception):
    """The agent cannot start; the message says why and what to do."""


class AgentTokenRejected(Exception):
    """The control plane refused the agent's token (a 401 with its reason); ``reason`` is its
    detail. The agent has stopped (or never started) and exits with EXIT_TOKEN_REJECTED."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenRejection:
    """Set by the control plane client, from any activity, the first time the agent's token
    is rejected; the agent process waits on it next to its stop signal."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason: str | None = None

    def reject(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            log.error(rejection_line(reason))
        self.event.set()


def rejection_line(reason: str) -> str:
    # The control plane's answer names the fix for an agent token; say it once.
    fix = (
        ""
        if "--kind agent" in reason
        else "; create a new one with `tether tokens create NAME --kind agent` and restart "
        "the agent with it"
    )
    return (
        f"agent token rejected by the control plane: {reason}{fix} "
        f"(exiting with code {EXIT_TOKEN_REJECTED})"
    )


def tether_version() -> str:
    try:
        return version("tether")
    except PackageNotFoundError:
        return "unknown"


def make_launcher(config: AgentConfig) -> Launcher:
    """The launcher ``config.launcher`` names (activities/launchers/registry.py: only its
    module is imported, so a process agent never loads the Docker SDK)."""
    try:
        return registry.make_launcher(config)
    except registry.UnknownLauncher as exc:  # AgentConfig checks first; other callers land here
        raise AgentConfigError(f"{SETTINGS['launcher']}: {exc}") from exc
    except LaunchError as exc:  # e.g. the Docker engine cannot be reached
        raise AgentStartupError(str(exc)) from exc


async def reap_orphans(
    launcher: Launcher, temporal: Client, organization: str, dep: str, host_queue: str
) -> None:
    """At start, let the launcher remove what no workflow owns any more: the deployment's
    orphaned containers, code servers here that their workflow records on another host."""
    if not launcher.supports_orphan_reaping:
        return
    what = launcher.orphan_kind
    try:
        removed = await launcher.reap_orphans(temporal, organization, dep, host_queue)
    except Exception:  # never worth stopping the agent for
        log.exception("could not look for %s", what)
        return
    if removed:
        log.info("removed %d %s: %s", len(removed), what, ", ".join(removed))


async def connect_temporal(config: AgentConfig, runtime: Runtime | None = None) -> Client:
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
        keys = codec.keys_from_environment(
            config.temporal_encryption_keys.get_secret_value()
            if config.temporal_encryption_keys
            else "",
            config.temporal_encryption_key_file,
        )
    except codec.KeySettingError as exc:  # the CLI checks first; other callers land here
        raise AgentConfigError(str(exc)) from exc
    if keys:
        log.info("Temporal payloads encrypted with key %s (%d keys)", keys[0].id, len(keys))
    try:
        return await Client.connect(
            config.temporal_address,
            namespace=config.namespace,
            data_converter=codec.data_converter(keys),
            tls=tls,
            api_key=config.temporal_api_key.get_secret_value() if config.temporal_api_key else None,
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise AgentStartupError(
            f"cannot connect to Temporal at {config.temporal_address} (namespace "
            f"{config.namespace}): {exc}; start one with `temporal server start-dev` or pass "
            "--temporal-address"
        ) from exc


def host_metadata(config: AgentConfig) -> dict[str, str]:
    """Where this agent runs, for people reading the agents list."""
    return {"host": socket.gethostname(), "state_dir": str(config.state_dir)}


async def search_attributes_ready(temporal: Client, config: AgentConfig) -> bool:
    """Whether workflows may set Tether's search attributes: setting one the namespace lacks
    fails the workflow task over and over, so they are used only once found registered."""
    if config.search_attributes == "off":
        return False
    namespace = config.namespace
    try:
        if config.search_attributes == "add":
            added = await add_missing_search_attributes(temporal, namespace)
            if added:
                log.info("registered search attributes %s", ", ".join(added))
            return True
        missing = await missing_search_attributes(temporal, namespace)
    except SearchAttributeCheckError as exc:
        log.warning("%s; runs cannot be filtered by status or job in Temporal", exc)
        return False
    if missing:
        log.warning(
            "Temporal namespace %s lacks Tether's search attributes %s, so runs cannot be "
            "filtered by status or job in the Temporal UI; add them, then restart the agent:\n%s",
            namespace,
            ", ".join(missing),
            how_to_add(missing, namespace, config.temporal_address),
        )
        return False
    return True


async def register(control_plane: ControlPlaneClient, config: AgentConfig) -> Agent:
    """The first heartbeat: proves the token and learns the deployment it belongs to."""
    try:
        return await control_plane.heartbeat(
            AgentHeartbeat(
                agent_name=config.agent_name,
                version=tether_version(),
                launcher=config.launcher,
                queues=config.queues,
                metadata=host_metadata(config),
            )
        )
    except ApplicationError as exc:
        if exc.type == TOKEN_REJECTED:
            reason = str(exc.details[0]) if exc.details else exc.message
            raise AgentTokenRejected(reason) from exc
        if exc.type == UNAVAILABLE:
            # Not the token's fault: the control plane is down, or the URL is wrong.
            raise AgentStartupError(
                f"{exc.message}; is it running, and is --control-plane its URL?"
            ) from exc
        raise AgentStartupError(f"{exc.message}; check --token (an agent token)") from exc
    except Exception as exc:
        raise AgentStartupError(
            f"cannot reach the control plane at {config.control_plane_url}: {exc!r}"
        ) from exc


# The sandbox with its runtime checks (no I/O, no wall clock, no threads in a workflow), but
# without importing the workflow modules again for every workflow run: that re-import was
# ~8 ms of a run's launch and most of the agent's CPU per workflow. Safe because the modules
# under workflows/ hold no module-level state and import only models and constants; the
# workflow tests run them under the full, re-importing sandbox (tests/workflows/conftest.py).
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
)


async def start_agent_workflow(
    temporal: Client, config: AgentConfig, agent: Agent, host_queue: str
) -> str:
    """Start this agent's AgentWorkflow on its own task queue, or continue the running one. One
    left on another queue by an older agent is replaced: polling must happen on this host,
    with this agent's queues."""
    workflow_id = agent_workflow_id(agent.organization, agent.deployment, config.agent_name)

    async def start(conflict: WorkflowIDConflictPolicy) -> None:
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
            task_queue=host_queue,
            id_conflict_policy=conflict,
            static_summary=f"agent {config.agent_name} of {agent.organization}/{agent.deployment}",
        )

    # A restarted agent continues its workflow instead of starting another.
    await start(WorkflowIDConflictPolicy.USE_EXISTING)
    description = await temporal.get_workflow_handle(workflow_id).describe()
    if description.task_queue != host_queue:
        # Unacknowledged requests it held come back when their lease expires.
        await start(WorkflowIDConflictPolicy.TERMINATE_EXISTING)
    return workflow_id


async def run_agent(config: AgentConfig, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then shut down gracefully. Running code servers and run
    workers are left running: the next agent adopts them.

    Raises AgentTokenRejected, after the same graceful shutdown, once the control plane
    rejects the agent's token (at start or from any activity): polling stops, and what the
    activities were doing is retried by the next agent with a valid token."""
    rejection = TokenRejection()
    # Checked before anything connects (a bad address exits 2), and served from the start.
    metrics_address = agent_metrics.metrics_address()
    runtime = None
    if metrics_address is not None:
        try:
            runtime = agent_metrics.start_runtime(metrics_address, config.agent_name)
        except agent_metrics.MetricsUnavailable as exc:
            raise AgentStartupError(str(exc)) from exc
        log.info("Prometheus metrics at http://%s/metrics", metrics_address)
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=config.blocking_threads, thread_name_prefix="launcher")
    )
    verify: bool | str = True
    if config.control_plane_ca_bundle:
        verify = str(config.control_plane_ca_bundle)
    control_plane = ControlPlaneClient(
        config.control_plane_url,
        config.token.get_secret_value(),
        verify=verify,
        deployment=config.deployment,
        on_rejected=rejection.reject,
    )
    try:
        try:
            agent = await register(control_plane, config)
        except AgentTokenRejected as exc:
            rejection.reject(exc.reason)
            raise
        temporal = await connect_temporal(config, runtime)
        attributes = await search_attributes_ready(temporal, config)
        launcher = make_launcher(config)
        if runtime is not None:
            figures = agent_metrics.AgentMetrics(runtime.metric_meter, launcher.name)
            launcher = agent_metrics.instrument(launcher, figures)
        context = AgentContext(
            control_plane=control_plane,
            launcher=launcher,
            temporal=temporal,
            agent_name=config.agent_name,
            worker_control_plane_url=config.worker_control_plane_url or config.control_plane_url,
            code_location_settings=config.code_locations,
            run_settings=config.runs.model_copy(update={"search_attributes": attributes}),
            search_attributes=attributes,
            version=tether_version(),
            metadata=host_metadata(config),
            kept_logs_dir=Path(config.state_dir) / "run-logs",
        )
        activity_set = AgentActivitySet.build(context)
        base = config.task_queue or default_task_queue(agent.organization, agent.deployment)
        host_queue = host_task_queue(base, config.agent_name)
        context.task_queue_base = base
        context.queues = list(config.queues)
        context.host_queue = host_queue
        activities = activity_set.activities()
        # One worker per agent queue served, and one on this agent's own queue (what only
        # this host can do, and its AgentWorkflow). All serve everything: which queue a task
        # is on decides who may run it.
        task_queues = [queue_task_queue(base, q) for q in dict.fromkeys(config.queues)]
        workers = [
            Worker(
                temporal,
                task_queue=queue,
                workflows=WORKFLOWS,
                activities=activities,
                max_concurrent_activities=config.max_concurrent_activities,
                workflow_runner=WORKFLOW_RUNNER,
                # Failures say only the agent's words (worker/failures.py).
                interceptors=[AgentWordsOnly()],
                graceful_shutdown_timeout=timedelta(seconds=config.graceful_shutdown_seconds),
            )
            for queue in [*task_queues, host_queue]
        ]
        nexus = nexus_worker(temporal, config, agent, base, verify, WORKFLOW_RUNNER)
        if nexus is not None:
            workers.append(nexus.worker)
        # Run as tasks rather than `async with`: after a token rejection the shutdown must be
        # bounded (see _stop_workers), and only a cancelled run() task can cut it short.
        running = [asyncio.create_task(worker.run()) for worker in workers]
        try:
            workflow_id = await start_agent_workflow(temporal, config, agent, host_queue)
            log.info(
                "agent %s serving %s/%s on task queues %s and its own %s (workflow %s)",
                config.agent_name,
                agent.organization,
                agent.deployment,
                ", ".join(task_queues),
                host_queue,
                workflow_id,
            )
            # In the background: it asks workflows (served by this worker) who owns what.
            reaping = asyncio.create_task(
                reap_orphans(
                    context.launcher, temporal, agent.organization, agent.deployment, host_queue
                )
            )
            sweeping = asyncio.create_task(
                sweep_periodically(context.launcher, config.output_retention, stop)
            )
            retention = config.output_retention
            sweeping_kept = asyncio.create_task(
                sweep_kept_logs_periodically(
                    context.kept_logs_dir or Path(config.state_dir) / "run-logs",
                    retention.keep_hours,
                    retention.sweep_interval_seconds,
                    stop,
                )
            )
            await _first(stop.wait(), rejection.event.wait(), *running)
            reaping.cancel()
            sweeping.cancel()
            sweeping_kept.cancel()
            log.info("agent %s shutting down", config.agent_name)
        finally:
            bound = None
            if rejection.reason is not None:
                bound = config.graceful_shutdown_seconds + REJECTED_SHUTDOWN_MARGIN_SECONDS
            await _stop_workers(workers, running, bound)
        if rejection.reason is None:  # else the control plane would refuse the acks
            await activity_set.agent.flush_acks()
        await activity_set.aclose()
        if nexus is not None:
            await nexus.aclose()
        if rejection.reason is not None:
            raise AgentTokenRejected(rejection.reason)
    finally:
        await control_plane.aclose()


async def _stop_workers(
    workers: list[Worker], running: list[asyncio.Task[None]], bound: float | None
) -> None:
    """Shut every worker down at once (one still polling while another drains would take
    new tasks), and raise a worker's fatal error if one stopped on its own.

    ``bound``: give up waiting after this long and cancel them. After a token rejection,
    local activities that call the control plane fail and are retried inside their workflow
    task for as long as it lasts, so a graceful shutdown may never end; cancelled, the agent
    exits like one that crashed, and Temporal hands what it held to the next agent."""
    shutting = asyncio.gather(*(worker.shutdown() for worker in workers))
    done, _ = await asyncio.wait([shutting], timeout=bound)
    if not done:
        log.warning(
            "the Temporal workers did not finish shutting down within %.0f s; stopping them "
            "now (Temporal retries their unfinished tasks on the next agent)",
            bound,
        )
        shutting.cancel()
        for task in running:
            task.cancel()
    results = await asyncio.gather(*running, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            raise result


async def _first(*waits: Coroutine[Any, Any, Any] | asyncio.Task[None]) -> None:
    """Return when the first of ``waits`` is done; cancel the coroutines among the others
    (tasks given are the caller's, and left running)."""
    tasks = [w if isinstance(w, asyncio.Task) else asyncio.ensure_future(w) for w in waits]
    own = [t for t, w in zip(tasks, waits, strict=True) if not isinstance(w, asyncio.Task)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in own:
            task.cancel()
