"""The Temporal dev server ``tether dev`` starts unless ``--temporal-address`` names one:
finding its binary, starting it, and waiting until it serves the default namespace."""

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from rich.markup import escape

from tether_cli.dev.options import HOST, DevError
from tether_cli.dev.printout import say
from tether_cli.dev.processes import StopSteps, spawn
from tether_cli.dev.stack import TEMPORAL, Stack

TEMPORAL_READY_SECONDS = 60.0
TEMPORAL_STOP: StopSteps = ((signal.SIGTERM, 15.0),)


def temporal_binary() -> str:
    """The ``temporal`` CLI's path; raises DevError saying how to install it."""
    from worker.temporal_binary import temporal_cli

    try:
        return temporal_cli()
    except FileNotFoundError as exc:
        raise DevError(f"{exc} (or pass --temporal-address)") from exc


def temporal_command() -> str:
    """How to type the temporal CLI: bare when it is on PATH, else its full path."""
    try:
        binary = temporal_binary()
    except DevError:
        return "temporal"
    on_path = shutil.which("temporal")
    return "temporal" if on_path and Path(on_path).resolve() == Path(binary).resolve() else binary


def local_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for talking to the Temporal we start: a plain local server in the
    default namespace, whatever TEMPORAL_TLS/NAMESPACE/API_KEY the shell sets for another."""
    return {k: v for k, v in env.items() if not k.startswith("TEMPORAL_")}


def start_temporal(stack: Stack) -> None:
    """Start ``temporal server start-dev`` and wait until it answers."""
    o = stack.options
    binary = temporal_binary()
    command = [
        binary,
        "server",
        "start-dev",
        "--ip",
        HOST,
        "--port",
        str(o.temporal_port),
        "--db-filename",
        str(o.home / "temporal.db"),
        "--log-level",
        "warn",
    ]
    if o.headless:
        command.append("--headless")
    else:
        command += ["--ui-port", str(o.temporal_ui_port), "--ui-disable-news-fetch"]
    if o.temporal_metrics_port is not None:
        command += ["--metrics-port", str(o.temporal_metrics_port)]
    if o.temporal_http_port is not None:
        command += ["--http-port", str(o.temporal_http_port)]
    env = local_env(os.environ)
    log = o.logs / "temporal.log"
    stack.children.append(spawn(TEMPORAL, command, log, env, TEMPORAL_STOP))

    def ready() -> bool:
        # `workflow list` needs the default namespace too, which the agent uses.
        try:
            probe = subprocess.run(
                [binary, "workflow", "list", "--address", o.temporal, "--limit", "1"],
                capture_output=True,
                timeout=10,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False
        return probe.returncode == 0

    stack.wait_for(f"Temporal at {o.temporal}", TEMPORAL_READY_SECONDS, ready, f"; see {log}")
    say(f"Temporal is up at {escape(o.temporal)}", style="green")
