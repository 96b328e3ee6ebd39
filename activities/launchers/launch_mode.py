"""How the launch running in this thread started its run worker, for the agent's metrics
(worker/metrics.py): ``cold`` unless the launcher notes otherwise, ``warm`` when a code
server's fork server forked it (process.py), ``pool`` when it took a container started ahead
(docker_pool.py). Launchers are blocking and each launch runs in one thread, so a thread-local
carries it from the launcher to the metrics without changing the launcher interface."""

import threading
from typing import Literal

LaunchMode = Literal["cold", "warm", "pool"]
LAUNCH_MODES: tuple[LaunchMode, ...] = ("cold", "warm", "pool")

_local = threading.local()


def begin() -> None:
    """A launch starts in this thread: cold until noted otherwise."""
    _local.mode = "cold"


def note(mode: LaunchMode) -> None:
    """Called by a launcher when this launch was not a cold start."""
    _local.mode = mode


def current() -> LaunchMode:
    mode: LaunchMode = getattr(_local, "mode", "cold")
    return mode
