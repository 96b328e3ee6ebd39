"""The Temporal dev server ``tether dev`` starts unless ``--temporal-address`` names one:
finding its binary, starting it, and waiting until it serves the default namespace; and
Tether's search attributes, on that server or the one named."""

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from rich.markup import escape

from tether_cli.dev.options import HOST, DevError, Options
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


def dev_server_command(o: Options, binary: str) -> list[str]:
    """``temporal server start-dev`` as ``tether dev`` runs it."""
    from worker.search_attributes import start_dev_flags

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
    # Tether's search attributes, in a new database; register_search_attributes adds them
    # to one an older `tether dev` made (the dev server then registers none).
    return command + start_dev_flags()


def start_temporal(stack: Stack) -> None:
    """Start ``temporal server start-dev`` and wait until it answers."""
    o = stack.options
    binary = temporal_binary()
    command = dev_server_command(o, binary)
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


REGISTER_SECONDS = 30.0


def register_search_attributes(stack: Stack) -> None:
    """Make sure the namespace the agent uses has Tether's search attributes
    (``workflows.search_attributes``), adding the missing ones through the operator API. A
    server that refuses (Temporal Cloud adds them only with its own tools) gets a warning
    with the commands to run; the agent then says what it does without them."""
    import asyncio

    from worker.search_attributes import SearchAttributeCheckError, how_to_add

    o = stack.options
    env = local_env(os.environ) if o.own_temporal else dict(os.environ)
    namespace = env.get("TEMPORAL_NAMESPACE") or "default"
    try:
        added = asyncio.run(
            asyncio.wait_for(_add_search_attributes(o.temporal, env), REGISTER_SECONDS)
        )
    except (SearchAttributeCheckError, RuntimeError, OSError, TimeoutError) as exc:
        from workflows.search_attributes import ALL

        say(
            f"[yellow]warning:[/] could not check Tether's search attributes on "
            f"{escape(o.temporal)} (namespace {escape(namespace)}): "
            f"{escape(str(exc) or type(exc).__name__)}; if they are missing, add them with:"
        )
        say(escape(how_to_add(list(ALL), namespace, o.temporal)), style="cyan")
        return
    if added:
        say(
            f"registered search attributes {', '.join(added)} (namespace {escape(namespace)})",
            style="dim",
        )


async def _add_search_attributes(address: str, env: dict[str, str]) -> list[str]:
    """Connect as the agent will (the TEMPORAL_* variables it reads) and add what is
    missing; the names added."""
    from temporalio.client import Client, TLSConfig

    from worker.search_attributes import add_missing_search_attributes

    def read(variable: str) -> bytes | None:
        path = env.get(variable)
        return Path(path).read_bytes() if path else None

    tls: TLSConfig | bool = False
    if env.get("TEMPORAL_TLS", "").lower() in ("1", "true", "t", "yes", "y", "on") or env.get(
        "TEMPORAL_TLS_CERT"
    ):
        tls = TLSConfig(
            server_root_ca_cert=read("TEMPORAL_TLS_CA"),
            client_cert=read("TEMPORAL_TLS_CERT"),
            client_private_key=read("TEMPORAL_TLS_KEY"),
        )
    namespace = env.get("TEMPORAL_NAMESPACE") or "default"
    client = await Client.connect(
        address, namespace=namespace, tls=tls, api_key=env.get("TEMPORAL_API_KEY") or None
    )
    return await add_missing_search_attributes(client, namespace)
