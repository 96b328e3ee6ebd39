"""Shared by the launcher unit tests."""

from pathlib import Path

from activities.launchers.base import Handle, LaunchSpec
from activities.launchers.process import ProcessLauncher
from activities.launchers.retention import OutputRetention


class Tracked(ProcessLauncher):
    """A launcher that remembers every handle it returns, so a fixture can stop them all."""

    def __init__(
        self,
        state_dir: Path,
        handles: list[Handle] | None = None,
        retention: OutputRetention | None = None,
    ) -> None:
        super().__init__(state_dir, retention=retention)
        self.handles = handles if handles is not None else []

    def start(self, spec: LaunchSpec) -> Handle:
        handle = super().start(spec)
        self.handles.append(handle)
        return handle
