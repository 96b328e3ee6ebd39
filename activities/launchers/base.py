"""The launcher interface: how code servers and run workers are started, found again,
watched and stopped. One implementation per backend (process.py, docker.py).

Every launched thing carries a *label*: the ID of the workflow that owns it (plus the
generation for code servers). ``start`` looks for a live instance with that label first and
adopts it, so a retried activity or a restarted agent never starts a second copy.
Implementations are blocking; activities call them through a thread pool.

What a backend can do beyond that is declared by its ``supports_*`` properties (all False
here); callers test those, never a launcher's name or class. The agent finds backends by
name in ``registry.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, Field

from tether_api.enums import CodeLocationKind
from tether_api.locations import CodeLocationSpec
from tether_api.user_api import Run
from workflows.handles import Handle, LaunchKind

if TYPE_CHECKING:
    from temporalio.client import Client

    from activities.launchers.retention import OutputRetention
    from worker.config import AgentConfig

__all__ = [
    "Handle",
    "Inspection",
    "LaunchError",
    "LaunchKind",
    "LaunchSpec",
    "Launcher",
    "last_lines",
    "target_env",
]


class LaunchError(ValueError):
    """The spec cannot be launched as given (a missing directory, executable or image):
    retrying will not help until the user fixes the code location. Activities raise it as a
    non-retryable failure."""


class LaunchSpec(BaseModel):
    """What to start. Built by an activity; may hold secrets, so it never enters a workflow."""

    label: str = Field(description="Deterministic identity: the owning workflow's ID (+ suffix).")
    kind: LaunchKind
    location: CodeLocationSpec = Field(description="The code location to run.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment for the process, already resolved (spec env, passed-through "
        "variables, TETHER_* settings, the run token).",
    )
    organization: str = Field(default="", description="For labels: the owning organization.")
    deployment: str = Field(default="", description="For labels: the owning deployment.")
    location_name: str = Field(default="", description="For labels: the code location.")
    generation: int | None = Field(default=None, description="The location's generation.")
    run_id: str | None = Field(default=None, description="Run workers: the run.")
    image: str | None = Field(
        default=None, description="Image to run instead of the location's (tag tether/image)."
    )
    warm_from: str | None = Field(
        default=None,
        description="Run workers of a location with launch 'warm': the label of the code "
        "server on this host whose fork server may start it.",
    )
    run: Run | None = Field(
        default=None,
        description="Run workers: the run as the control plane described it to the launch. "
        "A warm worker starts from it instead of asking again.",
    )


def target_env(location: CodeLocationSpec) -> dict[str, str]:
    """What the SDK's commands read to find the user's definitions (see tether_sdk.cli)."""
    env = {}
    if location.module:
        env["TETHER_MODULE"] = location.module
    if location.python_file:
        env["TETHER_PYTHON_FILE"] = location.python_file
    if location.working_directory:
        env["TETHER_WORKING_DIRECTORY"] = location.working_directory
    if location.attribute:
        env["TETHER_ATTRIBUTE"] = location.attribute
    if location.kind != CodeLocationKind.TETHER:
        env["TETHER_LOCATION_KIND"] = location.kind.value
    return env


def last_lines(data: bytes, lines: int) -> list[str]:
    """The last ``lines`` lines of a process's output, decoded leniently."""
    text = data.decode("utf-8", errors="replace")
    # Split on '\n' only: str.splitlines() would also split on form feeds, '\x1c', etc.
    result = text.split("\n")
    if result and result[-1] == "":
        result.pop()
    return [line.removesuffix("\r") for line in result[-lines:]]


class Inspection(BaseModel):
    """What a launched thing is doing now."""

    running: bool
    exit_code: int | None = Field(
        default=None,
        description="Exit code once it has exited; negative: killed by that signal; None while "
        "running or when the launcher no longer knows it.",
    )
    address: str | None = Field(
        default=None, description="Code servers: http://host:port once it listens."
    )
    found: bool = Field(default=True, description="False when nothing with the label exists.")
    detail: str | None = Field(
        default=None,
        description="How it ended, when the backend knows more than the exit code (e.g. "
        "'was killed for running out of memory').",
    )


class Launcher(ABC):
    """One backend. Methods are idempotent and blocking (``reap_orphans`` excepted)."""

    # The name the agent is configured with (TETHER_LAUNCHER, registry.py); recorded in
    # every Handle and in the agent's heartbeats.
    name: str
    # What ``reap_orphans`` removes, in the agent's log: "removed 2 <orphan_kind>: ...".
    orphan_kind: str = "orphans"

    @classmethod
    def from_config(cls, config: AgentConfig) -> Self:
        """The launcher an agent with ``config`` uses (``config.launcher`` names this class in
        the registry). Raises LaunchError when the backend cannot be reached."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from an agent's configuration")

    # ------------------------------------------------------------------ capabilities

    @property
    def supports_warm_fork(self) -> bool:
        """Run workers of a location with ``launch: warm`` can be forked from its code server
        on this host: ``LaunchSpec.warm_from`` is worth filling in."""
        return False

    @property
    def supports_warm_pool(self) -> bool:
        """Run workers can be taken from containers started ahead for the location's code
        server (``warm_pool`` in its container context); the launcher fills and drains the
        pool itself."""
        return False

    @property
    def supports_orphan_reaping(self) -> bool:
        """At start, the agent calls ``reap_orphans`` to remove what no workflow owns any
        more."""
        return False

    @property
    def supports_kept_output(self) -> bool:
        """Finished code servers' and run workers' output stays on the agent's disk after they
        exit, bounded by the output retention: the agent calls ``sweep`` periodically."""
        return False

    # ------------------------------------------------------------------ the interface

    @abstractmethod
    def start(self, spec: LaunchSpec) -> Handle:
        """Start ``spec``, or adopt the live instance that carries ``spec.label``."""

    @abstractmethod
    def find(self, label: str, *, include_exited: bool = False) -> Handle | None:
        """The live instance with this label, if any; with ``include_exited``, also one that
        has exited but is still recorded (so a one-shot launch is never repeated)."""

    @abstractmethod
    def inspect(self, handle: Handle) -> Inspection:
        """Running or exited (with its exit code), and the code server's address."""

    @abstractmethod
    def stop(self, handle: Handle, grace_seconds: float) -> Inspection:
        """SIGTERM (or the backend's equivalent), then kill after ``grace_seconds``. Stopping
        something already gone is not an error."""

    @abstractmethod
    def log_tail(self, handle: Handle, lines: int) -> list[str]:
        """The last ``lines`` lines of its output (stdout and stderr together)."""

    def log_text(self, handle: Handle, max_bytes: int) -> tuple[str, bool]:
        """Its whole output, or the latest ``max_bytes`` of it; and whether it was cut.
        Launchers that can read their output directly override this."""
        lines = self.log_tail(handle, 1_000_000)
        text = "\n".join(lines) + ("\n" if lines else "")
        data = text.encode("utf-8", "replace")
        if len(data) <= max_bytes:
            return text, False
        return data[-max_bytes:].decode("utf-8", "replace"), True

    @abstractmethod
    def cleanup(self, handle: Handle) -> None:
        """Forget a stopped instance: remove its files or container. Idempotent."""

    def finished(self, handle: Handle, succeeded: bool) -> None:  # noqa: B027 - optional hook
        """A run worker's outcome is recorded: free what it still holds. The default keeps
        everything (the process launcher keeps a run's log file)."""

    async def reap_orphans(
        self, temporal: Client, organization: str, deployment: str, host_queue: str
    ) -> list[str]:
        """With ``supports_orphan_reaping``, called once in the background when the agent
        starts: remove the deployment's instances here that no workflow owns any more (or
        that their workflow records on another host, ``host_queue`` being this agent's);
        returns their names. Asynchronous, since it asks the owning workflows through
        ``temporal``. The default removes nothing."""
        return []

    def sweep(self, retention: OutputRetention | None = None) -> list[str]:
        """With ``supports_kept_output``: remove the kept output of finished instances that
        ``retention`` no longer keeps; returns their labels. The default keeps nothing, so
        removes nothing."""
        return []
