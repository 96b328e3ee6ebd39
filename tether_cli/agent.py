"""``tether agent run``: the agent, a Temporal worker that runs the deployment's user code."""

import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

import typer

from tether_api.names import DEFAULT_AGENT_QUEUE

app = typer.Typer(help="The agent: runs code servers and run workers in your environment.")


@app.command("run")
def run(
    control_plane: str = typer.Option(
        ..., "--control-plane", envvar="TETHER_CONTROL_PLANE_URL", help="Control plane URL."
    ),
    token: str = typer.Option(
        ..., "--token", envvar="TETHER_AGENT_TOKEN", help="Agent token (tether_agent_...)."
    ),
    deployment: str | None = typer.Option(
        None,
        "--deployment",
        envvar="TETHER_DEPLOYMENT",
        help="The deployment this agent serves: needed with an organization-wide agent token "
        "(`tether tokens create NAME --kind agent --organization`); a deployment token's own "
        "by default.",
    ),
    agent_name: str | None = typer.Option(
        None, "--name", envvar="TETHER_AGENT_NAME", help="Agent name (default: the host name)."
    ),
    temporal_address: str = typer.Option(
        "127.0.0.1:7233", "--temporal-address", envvar="TEMPORAL_ADDRESS"
    ),
    namespace: str = typer.Option("default", "--namespace", envvar="TEMPORAL_NAMESPACE"),
    task_queue: str | None = typer.Option(
        None,
        "--task-queue",
        envvar="TETHER_TASK_QUEUE",
        help="Default tether:{org}:{deployment}; one per deployment.",
    ),
    queue: list[str] | None = typer.Option(
        None,
        "--queue",
        help="An agent queue to serve (repeatable; env TETHER_AGENT_QUEUES, comma-separated). "
        f"Default: '{DEFAULT_AGENT_QUEUE}', which serves code locations that name no agent_queue.",
    ),
    search_attributes: str = typer.Option(
        "check",
        "--search-attributes",
        envvar="TETHER_SEARCH_ATTRIBUTES",
        help="check (use Tether's Temporal search attributes when registered, else warn how "
        "to add them), add (register the missing ones), or off.",
    ),
    launcher: str = typer.Option(
        "process",
        "--launcher",
        envvar="TETHER_LAUNCHER",
        help="process (local processes) or docker (containers; settings: TETHER_DOCKER_*).",
    ),
    state_dir: Path | None = typer.Option(
        None, "--state-dir", envvar="TETHER_AGENT_STATE_DIR", help="Default $TETHER_HOME/agent."
    ),
    temporal_tls: bool = typer.Option(False, "--temporal-tls", envvar="TEMPORAL_TLS"),
    temporal_tls_ca: Path | None = typer.Option(
        None, "--temporal-tls-ca", envvar="TEMPORAL_TLS_CA", help="Server CA (PEM)."
    ),
    temporal_tls_cert: Path | None = typer.Option(
        None, "--temporal-tls-cert", envvar="TEMPORAL_TLS_CERT", help="Client cert (PEM)."
    ),
    temporal_tls_key: Path | None = typer.Option(
        None, "--temporal-tls-key", envvar="TEMPORAL_TLS_KEY", help="Client key (PEM)."
    ),
    temporal_api_key: str | None = typer.Option(
        None, "--temporal-api-key", envvar="TEMPORAL_API_KEY"
    ),
    encryption_keys: str | None = typer.Option(
        None,
        "--temporal-encryption-keys",
        envvar="TETHER_TEMPORAL_ENCRYPTION_KEYS",
        help="Encrypt Temporal payloads: 'id:base64key[,id:base64key]' (first encrypts).",
        show_envvar=True,
    ),
    encryption_key_file: Path | None = typer.Option(
        None,
        "--temporal-encryption-key-file",
        envvar="TETHER_TEMPORAL_ENCRYPTION_KEY_FILE",
        help="The encryption keys in a file, one 'id base64key' per line.",
    ),
    control_plane_ca: Path | None = typer.Option(
        None, "--control-plane-ca", envvar="TETHER_CONTROL_PLANE_CA", help="CA bundle (PEM)."
    ),
    worker_control_plane_url: str | None = typer.Option(
        None,
        "--worker-control-plane-url",
        envvar="TETHER_WORKER_CONTROL_PLANE_URL",
        help="URL run workers use for the control plane (default: --control-plane).",
    ),
    poll_wait: float = typer.Option(20, "--poll-wait", envvar="TETHER_AGENT_POLL_WAIT"),
    heartbeat_interval: float = typer.Option(
        15,
        "--heartbeat-interval",
        envvar="TETHER_AGENT_HEARTBEAT_INTERVAL",
        help="Seconds between heartbeats to the control plane; keep it well under the control "
        "plane's agent_heartbeat_timeout_seconds.",
    ),
    blocking_threads: int = typer.Option(
        64,
        "--blocking-threads",
        envvar="TETHER_AGENT_BLOCKING_THREADS",
        help="Threads for launcher calls; every running run and code server uses one briefly "
        "twice a second.",
    ),
    log_level: str = typer.Option("info", "--log-level", envvar="TETHER_LOG_LEVEL"),
) -> None:
    """Run the agent until SIGTERM or Ctrl-C. Running code servers and runs are left running
    and adopted by the next agent.

    Exit codes: 0 stopped by a signal; 1 could not start (the control plane, Temporal or the
    Docker engine unreachable); 2 invalid configuration, found before connecting anywhere
    (the message names each setting); 3 the control plane rejected the agent token (revoked
    or expired): create a new one and restart the agent with it."""
    import asyncio

    from pydantic import ValidationError

    from worker.config import AgentConfig, AgentConfigError, config_problems, describe_errors
    from worker.main import (
        EXIT_TOKEN_REJECTED,
        AgentStartupError,
        AgentTokenRejected,
        run_agent,
    )
    from worker.settings import (
        SettingsError,
        code_location_settings,
        docker_settings,
        nexus_settings,
        output_retention,
        run_settings,
    )

    # Every setting is checked here, before anything connects: a wrong one exits 2 naming it,
    # rather than failing later like a server that is down (exit 1).
    problems: list[str] = []
    if log_level.upper() not in logging.getLevelNamesMapping():
        problems.append(
            "TETHER_LOG_LEVEL (--log-level): not a log level; use debug, info, warning or error"
        )
    fields: dict[str, object] = {
        "control_plane_url": control_plane,
        "token": token,
        "deployment": deployment,
        "temporal_address": temporal_address,
        "namespace": namespace,
        "task_queue": task_queue,
        "launcher": launcher,
        "search_attributes": search_attributes,
        "temporal_tls": {
            # A CA or a client certificate is only ever given for TLS.
            "enabled": temporal_tls or bool(temporal_tls_cert or temporal_tls_ca),
            "server_root_ca_cert": temporal_tls_ca,
            "client_cert": temporal_tls_cert,
            "client_private_key": temporal_tls_key,
        },
        "temporal_api_key": temporal_api_key,
        "temporal_encryption_keys": encryption_keys,
        "temporal_encryption_key_file": encryption_key_file,
        "control_plane_ca_bundle": control_plane_ca,
        "worker_control_plane_url": worker_control_plane_url,
        "poll_wait_seconds": poll_wait,
        "heartbeat_interval_seconds": heartbeat_interval,
        "blocking_threads": blocking_threads,
    }
    for field, read in (
        ("code_locations", code_location_settings),
        ("runs", run_settings),
        ("docker", docker_settings),
        ("output_retention", output_retention),
        ("nexus", nexus_settings),
    ):
        try:
            fields[field] = read()
        except SettingsError as exc:
            problems.extend(exc.problems)
    queues = queue or [q.strip() for q in os.environ.get("TETHER_AGENT_QUEUES", "").split(",")]
    if any(queues):
        fields["queues"] = [q for q in queues if q]
    if agent_name:
        fields["agent_name"] = agent_name
    if state_dir:
        fields["state_dir"] = state_dir
    try:
        config = AgentConfig.model_validate(fields)
    except ValidationError as exc:
        problems.extend(describe_errors(exc))
    else:
        problems.extend(config_problems(config))
    if problems:
        _invalid(problems)

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(config, stop)

    try:
        asyncio.run(main())
    except AgentConfigError as exc:
        _invalid([str(exc)])
    except AgentStartupError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        _exit_now(1)
    except AgentTokenRejected:
        # Already logged, once, when it happened (see worker.main.rejection_line).
        _exit_now(EXIT_TOKEN_REJECTED)
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    """Exit with ``code`` once the agent has stopped, without the interpreter's finalization.
    Temporal's core keeps native threads that can call into Python while it finalizes, which
    aborted the process (SIGABRT, "PyGILState_Release: thread state must be current"), so a
    supervisor saw -6 instead of 3 after a token rejection (seen once in CI). Everything the
    agent owns is closed by then; only the logs and output need flushing."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _invalid(problems: list[str]) -> NoReturn:
    typer.secho(
        "error: invalid agent configuration; fix these settings and start it again:",
        fg="red",
        err=True,
    )
    for problem in problems:
        typer.secho(f"  {problem}", fg="red", err=True)
    raise typer.Exit(2)
