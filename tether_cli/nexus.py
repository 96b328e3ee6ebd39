"""``tether nexus``: the Nexus endpoint through which Temporal workflows run a deployment's
jobs (the service tether.v1.Runs that agents with a Nexus token host)."""

import shlex
from typing import Annotated

import typer

from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.nexus_endpoint import (
    ENDPOINT_NAME,
    Endpoint,
    EndpointError,
    default_endpoint_name,
    ensure_endpoint,
    target_task_queue,
)
from tether_cli.render import CliError, UsageProblem, errors, note, out

app = typer.Typer(
    help="Run Tether jobs from Temporal workflows through Nexus: the endpoint.",
    no_args_is_help=True,
)
endpoint_app = typer.Typer(help="The deployment's Nexus endpoint.", no_args_is_help=True)
app.add_typer(endpoint_app, name="endpoint")


@endpoint_app.command("create")
def create(
    name: Annotated[
        str | None,
        typer.Argument(help="The endpoint's name (default: tether-DEPLOYMENT)."),
    ] = None,
    temporal_address: Annotated[
        str,
        typer.Option(
            "--temporal-address",
            envvar="TEMPORAL_ADDRESS",
            help="The Temporal frontend the agents use.",
        ),
    ] = "127.0.0.1:7233",
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace",
            envvar="TEMPORAL_NAMESPACE",
            help="The agents' namespace: the endpoint's target.",
        ),
    ] = "default",
    task_queue: Annotated[
        str | None,
        typer.Option(
            "--task-queue",
            envvar="TETHER_TASK_QUEUE",
            help="The agents' --task-queue, when they set one.",
        ),
    ] = None,
    print_only: Annotated[
        bool,
        typer.Option("--print", help="Print the temporal command instead of running it."),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Create the Nexus endpoint for the deployment's service tether.v1.Runs, with the
    `temporal` CLI (`temporal operator nexus endpoint create`); its other options
    (--tls-*, --api-key ...) come from the TEMPORAL_* environment as for `temporal` itself."""
    with errors():
        with TetherClient(Connection.resolve(url, token, deployment)) as client:
            dep = client.get_deployment()
        wanted = Endpoint(
            name or default_endpoint_name(dep.name),
            namespace,
            target_task_queue(dep.organization, dep.name, task_queue),
        )
        if not ENDPOINT_NAME.match(wanted.name):
            raise UsageProblem(
                f"{wanted.name!r} is not a Nexus endpoint name: use letters, digits and '-', "
                "starting with a letter"
            )
        connection = ["--address", temporal_address]
        command = shlex.join(["temporal", *wanted.create_args(), *connection])
        if print_only:
            out.print(command, markup=False)
            return
        binary = _temporal_binary()
        try:
            created = ensure_endpoint(binary, wanted, connection)
        except EndpointError as exc:
            raise CliError(str(exc)) from exc
        if created:
            note(f"ran: {command}")
            out.print(
                f"Nexus endpoint {wanted.name} created: namespace {namespace}, task queue "
                f"{wanted.task_queue}",
                markup=False,
            )
        else:
            out.print(f"Nexus endpoint {wanted.name} already exists, as wanted", markup=False)
        note(
            "agents of this deployment host it when started with TETHER_NEXUS_TOKEN (`tether "
            f"tokens create NAME --kind nexus --deployment {dep.name}`)"
        )


def _temporal_binary() -> str:
    try:
        from worker.temporal_binary import temporal_cli
    except ImportError:  # the CLI without the agent extra
        return "temporal"
    try:
        return temporal_cli()
    except FileNotFoundError as exc:
        raise CliError(f"{exc}; or run the command `--print` shows yourself") from exc
