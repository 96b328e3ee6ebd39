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

    def describe(self) -> str:
        """How a person finds it: 'pid 123' or 'container abc123def456 (image)'."""
        if self.container_id:
            image = f" ({self.image})" if self.image else ""
            return f"container {self.container_id[:12]}{image}"
        return f"pid {self.pid}"
