"""The control plane ``tether dev`` runs: ``tether controlplane serve`` on SQLite under its
home, waited for until healthy; and a client of its user API, for the other steps."""

import os
import signal
import sys
from typing import TYPE_CHECKING

import httpx

from tether_cli.dev.options import HOST, Options
from tether_cli.dev.printout import say
from tether_cli.dev.processes import StopSteps, spawn
from tether_cli.dev.stack import CONTROL_PLANE, Stack

if TYPE_CHECKING:
    from tether_cli.client import TetherClient

CONTROL_PLANE_READY_SECONDS = 30.0
# uvicorn waits for open requests, among them a long-poll of the (now stopped) agent that the
# server holds up to 20 s; a second SIGINT makes it stop waiting ("force quit").
CONTROL_PLANE_STOP: StopSteps = ((signal.SIGTERM, 2.0), (signal.SIGINT, 8.0))


def start_control_plane(stack: Stack) -> None:
    """Start the control plane (it migrates the database first) and wait until healthy."""
    o = stack.options
    command = [
        sys.executable,
        "-m",
        "tether_cli.main",
        "controlplane",
        "serve",
        "--db",
        o.database_url,
        "--host",
        HOST,
        "--port",
        str(o.port),
    ]
    env = {
        **os.environ,
        "TETHER_HOME": str(o.home),
        "PYTHONUNBUFFERED": "1",
        # The web UI links each run to its workflow in this stack's Temporal UI (none when
        # headless or external: an empty value turns the links off).
        "TETHER_TEMPORAL_UI_URL": o.temporal_ui or "",
    }
    log = o.logs / "controlplane.log"
    stack.children.append(spawn(CONTROL_PLANE, command, log, env, CONTROL_PLANE_STOP))

    def healthy() -> bool:
        try:
            return httpx.get(f"{o.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    stack.wait_for(
        f"the control plane at {o.url}", CONTROL_PLANE_READY_SECONDS, healthy, f"; see {log}"
    )
    say(f"control plane is up at {o.url}", style="green")


def client(o: Options, user_token: str) -> "TetherClient":
    """A client of the stack's control plane, in its deployment, as ``user_token``."""
    from tether_cli.client import TetherClient
    from tether_cli.context import Connection

    return TetherClient(Connection(url=o.url, token=user_token, deployment=o.deployment))
