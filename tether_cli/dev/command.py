"""The ``tether dev`` command: parses the options, then runs the stack in order (Temporal,
control plane, tokens, agent, code locations), waits for a signal or a child's exit, and
stops everything; the exit code says how it ended."""

import inspect
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether_api.home import tether_home
from tether_cli.dev.agent import start_agent
from tether_cli.dev.controlplane import client, start_control_plane
from tether_cli.dev.locations import deploy
from tether_cli.dev.nexus import make_endpoint
from tether_cli.dev.options import DevError, Options, check_ports
from tether_cli.dev.printout import out, ready_panel, say
from tether_cli.dev.processes import Signals
from tether_cli.dev.stack import ChildDied, Interrupted, Stack
from tether_cli.dev.state import (
    choose_tokens,
    dev_file_for,
    load_dev_file,
    lock_home,
    save_dev_file,
)
from tether_cli.dev.temporal import (
    register_search_attributes,
    start_temporal,
    temporal_binary,
    temporal_command,
)
from tether_cli.dev.watch import DevWatcher
from tether_cli.render import CliError

# The sign-in link tether dev prints: one hour, once (`tether sign-in-link` makes more).
SIGN_IN_LINK_SECONDS = 3600


def dev(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="TETHER_HOME",
            help="State directory: databases, tokens (dev.json), logs (default ~/.tether).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Control plane port.")] = 3000,
    temporal_port: Annotated[
        int, typer.Option("--temporal-port", help="Temporal dev server port (gRPC).")
    ] = 7233,
    temporal_ui_port: Annotated[
        int, typer.Option("--temporal-ui-port", help="Temporal Web UI port.")
    ] = 8233,
    temporal_metrics_port: Annotated[
        int | None,
        typer.Option(
            "--temporal-metrics-port", help="Temporal metrics port (default: a free one)."
        ),
    ] = None,
    temporal_http_port: Annotated[
        int | None,
        typer.Option("--temporal-http-port", help="Temporal HTTP API port (default: a free one)."),
    ] = None,
    temporal_address: Annotated[
        str | None,
        typer.Option(
            "--temporal-address",
            envvar="TEMPORAL_ADDRESS",
            help="Use this Temporal server (host:port) instead of starting one.",
        ),
    ] = None,
    org: Annotated[str, typer.Option("--org", help="Organization.")] = "local",
    deployment: Annotated[str, typer.Option("--deployment", help="Deployment.")] = "dev",
    no_example: Annotated[
        bool, typer.Option("--no-example", help="Do not deploy the bundled example.")
    ] = False,
    headless: Annotated[bool, typer.Option("--headless", help="No Temporal Web UI.")] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Redeploy a code location when a file in its folder on this machine changes.",
        ),
    ] = False,
) -> None:
    """Run the whole stack on this machine: Temporal dev server, control plane, agent.

    Starts `temporal server start-dev` (unless --temporal-address or TEMPORAL_ADDRESS names
    one), `tether controlplane serve` (SQLite under --home) and `tether agent run` with the
    process launcher; saves the tokens to $TETHER_HOME/dev.json, which the other tether
    commands read; deploys the bundled example as code location `quickstart`. Logs go to
    $TETHER_HOME/logs.

    A restart with the same --home keeps tokens, runs and code locations, and restarts the
    locations' code servers.

    Ctrl-C (or SIGTERM) stops the agent, then the code servers and run workers it started
    (a plain `tether agent run` leaves those running for the next agent to adopt; `tether
    dev` is the whole stack, so it stops them: runs in progress are interrupted), then the
    control plane, then Temporal. A second Ctrl-C kills what is left at once.
    """
    from tether_api.names import check_name

    try:
        check_name(org, "organization name")
        check_name(deployment, "deployment name")
    except ValueError as exc:
        say(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    home = (home or tether_home()).expanduser().absolute()
    options = Options(
        home=home,
        port=port,
        temporal_port=temporal_port,
        temporal_ui_port=temporal_ui_port,
        temporal_metrics_port=temporal_metrics_port,
        temporal_http_port=temporal_http_port,
        temporal_address=temporal_address or None,
        org=org,
        deployment=deployment,
        example=not no_example,
        headless=headless,
        watch=watch,
    )
    raise typer.Exit(run(options))


# Typer keeps the single line breaks of a help paragraph: one line per paragraph reads better.
dev.__doc__ = "\n\n".join(
    " ".join(paragraph.split()) for paragraph in inspect.cleandoc(dev.__doc__ or "").split("\n\n")
)


def run(o: Options) -> int:
    """Start, wait, stop; the exit code."""
    try:
        o.logs.mkdir(parents=True, exist_ok=True)
        lock = lock_home(o.home)
    except (OSError, DevError) as exc:
        say(f"[red]error:[/] {escape(getattr(exc, 'message', str(exc)))}")
        return 1
    with lock:
        signals = Signals()
        stack = Stack(o, signals)
        try:
            # Before anything starts: a busy port fails here, with nothing to clean up.
            check_ports(o.ports())
            if o.own_temporal:
                temporal_binary()
            signals.install()
            return _run_stack(stack)
        except DevError as exc:
            say(f"[red]error:[/] {escape(exc.message)}")
            return 1
        finally:
            stack.shutdown()


def _run_stack(stack: Stack) -> int:
    o = stack.options
    try:
        if o.own_temporal:
            start_temporal(stack)
        else:
            say(
                f"using the Temporal server at {escape(o.temporal)} (not starting one)", style="dim"
            )
        register_search_attributes(stack)
        start_control_plane(stack)
        tokens = choose_tokens(o, load_dev_file(o.dev_file))
        save_dev_file(o.dev_file, dev_file_for(o, tokens))
        start_agent(stack, tokens)
        endpoint = make_endpoint(o)
        deploy(stack, tokens)
        with client(o, tokens.user) as c:
            link = c.sign_in_link(SIGN_IN_LINK_SECONDS)
        out.print(ready_panel(o, tokens, temporal_command(), link, endpoint))
        out.print("Press Ctrl-C to stop everything.")
        if o.watch:
            DevWatcher(stack, tokens).start()
        stack.run_until_stopped()
        say(f"{stack.signals.name or 'stop'} received; stopping", style="dim")
        return 0
    except Interrupted:
        say(f"{stack.signals.name} received during startup; stopping", style="dim")
        return 0
    except ChildDied as exc:
        child = exc.child
        say(
            f"[red]error:[/] {child.name} (pid {child.pid}) exited with code "
            f"{child.exit_code()} {escape(exc.during)}; last lines of "
            f"{escape(str(child.log_path))}:"
        )
        for line in child.tail():
            say(escape(line), style="dim")
        return 1
    except CliError as exc:  # the control plane refused or did not answer
        say(f"[red]error:[/] {escape(exc.message)}")
        return 1
