"""What every activity shares: the control plane client, the launcher, the Temporal client
and the agent's settings. Built once by the worker; holds the secrets workflows never see."""

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.controlplane import ControlPlaneClient
from activities.launchers.base import Handle, Launcher
from tether_api.locations import CodeLocationSpec
from tether_api.names import DEFAULT_AGENT_QUEUE
from workflows.models import CodeLocationSettings, RunSettings

T = TypeVar("T")

# About five minutes of retries (the backoff is capped at 10 s). For handles recorded before
# agents had their own queue; when it can go: workflows/README.md, "Deprecations".
LEGACY_NOT_FOUND_ATTEMPTS = 30


@dataclass
class AgentContext:
    control_plane: ControlPlaneClient
    launcher: Launcher
    temporal: Client
    agent_name: str
    # The URL run workers use to reach the control plane (may differ from the agent's own,
    # e.g. from inside a container).
    worker_control_plane_url: str
    code_location_settings: CodeLocationSettings = field(default_factory=CodeLocationSettings)
    run_settings: RunSettings = field(default_factory=RunSettings)
    version: str = ""
    # The deployment's task queue base, the agent queues this agent serves, and its own task
    # queue (see workflows/names.py). Empty host_queue: handles carry no host (tests).
    task_queue_base: str = ""
    queues: list[str] = field(default_factory=lambda: [DEFAULT_AGENT_QUEUE])
    host_queue: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # Tether's search attributes are registered in the namespace: workflows may set them.
    search_attributes: bool = False
    # Where the agent keeps finished runs' output when their log settings say 'local' (no
    # store URL); None: it keeps none (tests of single activities).
    kept_logs_dir: Path | None = None

    def mark(self, handle: Handle) -> Handle:
        """The handle, stamped with this agent and its own task queue: from now on only this
        host watches, stops and reads it."""
        return handle.model_copy(update={"agent": self.agent_name, "host_queue": self.host_queue})

    def check_here(self, handle: Handle, found: bool) -> None:
        """A handle recorded before agents had their own queue names no host: when this agent
        does not know its label, another agent's host may, so the attempt fails (retried,
        maybe on that agent) a while before "not found" is taken to mean "exited"."""
        if found or handle.host_queue is not None or not activity.in_activity():
            return
        if activity.info().attempt < LEGACY_NOT_FOUND_ATTEMPTS:
            raise ApplicationError(
                f"{handle.label} is not on the host of agent {self.agent_name}; another "
                "agent's host may have it",
                type="NotOnThisHost",
            )

    def is_local(self, handle: Handle) -> bool:
        """Whether this agent's host can see the process: one recorded before agents had their
        own queue counts as local, as it always did."""
        return handle.host_queue is None or handle.host_queue == self.host_queue


def passthrough_names(spec: CodeLocationSpec) -> list[str]:
    """The variables the agent copies from its own environment into the location's
    processes (and its containers'): the secrets its log settings mask."""
    return [*spec.passthrough_env, *(spec.container.passthrough_env if spec.container else [])]


def resolve_env(spec: CodeLocationSpec) -> dict[str, str]:
    """The location's env plus the variables it names for pass-through, read from the
    agent's own environment (secrets that never reach the control plane)."""
    env = dict(spec.env)
    names = passthrough_names(spec)
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise ApplicationError(
            f"passthrough_env names {', '.join(missing)}, which the agent's environment does "
            "not set: set them where the agent runs, or remove them from the code location",
            type="MissingPassthroughEnv",
            non_retryable=True,
        )
    env.update({name: os.environ[name] for name in names})
    return env


async def blocking(fn: Callable[[], T], heartbeat_every: float = 2.0) -> T:
    """Run blocking launcher work in the thread pool, heartbeating while it runs so that a
    long stop or start is not mistaken for a dead worker."""
    return await heartbeating(asyncio.to_thread(fn), heartbeat_every)


async def heartbeating(work: Awaitable[T], every: float) -> T:
    """Await ``work``, heartbeating every ``every`` seconds meanwhile: an agent that dies
    during it is noticed by Temporal within the heartbeat timeout, not the whole
    start-to-close timeout. Canceled with the activity, ``work`` is canceled too."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            # Local activities (a run's launch) cannot heartbeat: their workflow task covers
            # them.
            if activity.in_activity() and not activity.info().is_local:
                activity.heartbeat()
    finally:
        task.cancel()
