"""What workflows know of a launched code server or run worker: a handle to find it again.

Shared by workflows (it is recorded in their histories) and by activities and launchers (they
make and read it); it lives here so that workflows import nothing from ``activities/``.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

LaunchKind = Literal["code-server", "run-worker"]


class Handle(BaseModel):
    """How to find a launched process or container again. Safe for workflow history: it holds
    no secrets."""

    label: str
    kind: LaunchKind
    launcher: str = Field(description="Name of the launcher that started it, e.g. 'process'.")
    pid: int | None = Field(default=None, description="Process ID (process launcher).")
    container_id: str | None = Field(default=None, description="Container ID (Docker launcher).")
    image: str | None = Field(default=None, description="The container's image (Docker launcher).")
    log_path: str | None = Field(default=None, description="Where its output is kept, if a file.")
    started_at: datetime
    adopted: bool = Field(default=False, description="True when start() found it already running.")
    agent: str | None = Field(
        default=None, description="The agent that launched it (on whose host it runs)."
    )
    host_queue: str | None = Field(
        default=None,
        description="That agent's own task queue: watching, stopping, reading the logs of and "
        "adopting this process go there, since only that host can see it. None in handles "
        "recorded before agents had one (they use the workflow's own queue).",
    )

    def describe(self) -> str:
        """How a person finds it: 'pid 123' or 'container abc123def456 (image)'."""
        if self.container_id:
            image = f" ({self.image})" if self.image else ""
            return f"container {self.container_id[:12]}{image}"
        return f"pid {self.pid}"

    def where(self) -> str:
        """'pid 123 on agent a-1', for messages about a host."""
        return self.describe() + (f" on agent {self.agent}" if self.agent else "")
