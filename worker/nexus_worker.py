"""The agent's Temporal worker for the Nexus service tether.v1.Runs: on the deployment's Nexus
task queue (workflows/names.py ``nexus_task_queue``), with NexusRunWorkflow and its
activities, started only when the agent has a Nexus token (``TETHER_NEXUS_TOKEN``)."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker, WorkflowRunner

from activities.nexus_runs import NexusRunActivities
from activities.runs_api import RunsApiClient
from tether_api.agent_api import Agent
from tether_api.nexus import SERVICE_NAME
from worker.activity_set import defined_activities
from worker.config import AgentConfig
from worker.failures import AgentWordsOnly
from worker.nexus_service import TetherRunsHandler
from workflows.names import nexus_task_queue
from workflows.nexus_run import NexusRunWorkflow

log = logging.getLogger("tether.agent.nexus")


@dataclass
class NexusWorker:
    worker: Worker
    activities: NexusRunActivities
    task_queue: str

    async def aclose(self) -> None:
        await self.activities.aclose()


def nexus_worker(
    temporal: Client,
    config: AgentConfig,
    agent: Agent,
    base: str,
    verify: bool | str,
    workflow_runner: WorkflowRunner,
) -> NexusWorker | None:
    """The worker hosting the Nexus service, or None (and a line saying so) without a token."""
    settings = config.nexus
    if settings.token is None:
        log.info(
            "no Nexus token (TETHER_NEXUS_TOKEN): this agent hosts no Nexus service; see "
            "`tether nexus --help`"
        )
        return None
    runs = RunsApiClient(
        config.control_plane_url,
        settings.token.get_secret_value(),
        agent.deployment,
        verify=verify,
    )
    activities = NexusRunActivities(runs)
    queue = nexus_task_queue(base)
    handler = TetherRunsHandler(
        runs, settings, agent.organization, agent.deployment, config.namespace
    )
    worker = Worker(
        temporal,
        task_queue=queue,
        workflows=[NexusRunWorkflow],
        activities=defined_activities(activities),
        nexus_service_handlers=[handler],
        workflow_runner=workflow_runner,
        interceptors=[AgentWordsOnly()],
        graceful_shutdown_timeout=timedelta(seconds=config.graceful_shutdown_seconds),
    )
    log.info(
        "hosting the Nexus service %s on task queue %s for callers in %s (endpoint target: "
        "namespace %s, task queue %s)",
        SERVICE_NAME,
        queue,
        settings.describe_callers(config.namespace),
        config.namespace,
        queue,
    )
    return NexusWorker(worker, activities, queue)
