"""The agent ``tether dev`` runs: ``tether agent run`` with the process launcher, against
the stack's control plane and Temporal, waited for until it heartbeats; and, at shutdown,
the code servers and run workers it launched."""

import functools
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from tether_cli.dev.controlplane import client
from tether_cli.dev.printout import say
from tether_cli.dev.processes import StopSteps, spawn
from tether_cli.dev.stack import AGENT, Stack
from tether_cli.dev.state import Tokens
from tether_cli.dev.temporal import local_env
from tether_cli.render import CliError

AGENT_NAME = "dev"
AGENT_READY_SECONDS = 60.0
# The agent finishes in-flight activities (5 s by default) and closes its Temporal worker.
AGENT_STOP: StopSteps = ((signal.SIGTERM, 20.0),)
LAUNCHED_STOP_GRACE_SECONDS = 5.0


def start_agent(stack: Stack, tokens: Tokens) -> None:
    """Start the agent and wait until it heartbeats."""
    o = stack.options
    command = [
        sys.executable,
        "-m",
        "tether_cli.main",
        "agent",
        "run",
        "--launcher",
        "process",
        "--name",
        AGENT_NAME,
        "--temporal-address",
        o.temporal,
        "--state-dir",
        str(o.agent_state),
    ]
    base = local_env(os.environ) if o.own_temporal else dict(os.environ)
    env = {
        **base,
        "TETHER_HOME": str(o.home),
        "TETHER_CONTROL_PLANE_URL": o.url,
        # In the environment, not in argv: `ps` shows every user's argv.
        "TETHER_AGENT_TOKEN": tokens.agent,
        # It hosts the Nexus service tether.v1.Runs with this one (tether_cli/dev/nexus.py).
        "TETHER_NEXUS_TOKEN": tokens.nexus or "",
        # Its own deployment: a TETHER_DEPLOYMENT left in the shell for the user commands
        # would otherwise be sent as the agent's (and refused for this token).
        "TETHER_DEPLOYMENT": o.deployment,
        "PYTHONUNBUFFERED": "1",
    }
    log = o.logs / "agent.log"
    started_at = datetime.now(UTC)
    # Before the spawn: whatever happens from here, the shutdown stops what it launched.
    stack.stop_launched = functools.partial(stop_launched, o.agent_state)
    stack.children.append(spawn(AGENT, command, log, env, AGENT_STOP))

    def heartbeating() -> bool:
        # An agent of the same name from the last `tether dev` may still count as
        # available: only a heartbeat sent after this start is this agent's.
        try:
            agents = c.list_agents()
        except CliError:
            return False
        return any(
            a.name == AGENT_NAME and a.available and a.last_heartbeat_at >= started_at
            for a in agents
        )

    with client(o, tokens.user) as c:
        stack.wait_for(f"agent {AGENT_NAME!r}", AGENT_READY_SECONDS, heartbeating, f"; see {log}")
    say(f"agent {AGENT_NAME!r} is heartbeating", style="green")


def stop_launched(agent_state: Path, hurry: threading.Event) -> None:
    """A stopped agent leaves its code servers and run workers running for the next one
    to adopt; `tether dev` is the whole stack, so it stops them too."""
    from activities.launchers.process import ProcessLauncher

    grace = 0.0 if hurry.is_set() else LAUNCHED_STOP_GRACE_SECONDS
    stopped = ProcessLauncher(agent_state).stop_all(grace)
    if stopped:
        say(f"stopped {stopped} code server(s) and run worker(s)", style="dim")
