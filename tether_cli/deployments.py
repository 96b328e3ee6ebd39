"""``tether deployment``: the deployment's settings (concurrency, where logs and errors go)."""

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from tether_api.logs import LogForwarding, LogSettings
from tether_api.user_api import Deployment
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.render import JsonOption, UsageProblem, errors, out, print_field, print_json

WIDTH = 17  # the longest field name, and a space

app = typer.Typer(help="The deployment's settings.", no_args_is_help=True)


def _print(dep: Deployment) -> None:
    logs = dep.log_settings
    print_field("deployment", escape(dep.name), WIDTH)
    print_field("run concurrency", str(dep.run_concurrency_limit), WIDTH)
    print_field("log forwarding", logs.forwarding.value, WIDTH)
    print_field("log store", escape(logs.store_url or "-"), WIDTH)
    print_field("redact errors", "yes" if logs.redact_errors else "no", WIDTH)


@app.command()
def show(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Show the deployment's settings, its log settings included."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        dep = client.get_deployment()
    if json_output:
        print_json(dep)
    else:
        _print(dep)


@app.command("set-logs")
def set_logs(
    forwarding: Annotated[
        LogForwarding | None,
        typer.Option(
            "--forwarding",
            help="all: send output and log records; structured: lifecycle events only; "
            "local: as structured, and the agent serves the output on request. Unset: as "
            "it is.",
        ),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            help="With --forwarding local: a file:///directory where the agent writes each "
            "run's output; the control plane keeps only the URL. '' removes it; unset: as "
            "it is.",
        ),
    ] = None,
    redact_errors: Annotated[
        bool | None,
        typer.Option(
            "--redact-errors/--no-redact-errors",
            help="Send user-code errors as an error ID and class only. Unset: as it is.",
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Change the deployment's log settings: what is given changes, the rest stays (runs
    launched from now on follow them; a code location's own `logs` settings still win for
    its runs)."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        # Merged with the current settings: leaving an option out must never loosen them
        # (set-logs --redact-errors on a 'local' deployment must not start forwarding).
        current = client.get_deployment().log_settings or LogSettings()
        changes: dict[str, object] = {}
        if forwarding is not None:
            changes["forwarding"] = forwarding
        if store_url is not None:
            changes["store_url"] = store_url or None
        if redact_errors is not None:
            changes["redact_errors"] = redact_errors
        if not changes:
            raise UsageProblem(
                "nothing to change: give --forwarding, --store-url or --redact-errors"
            )
        try:
            settings = LogSettings.model_validate({**current.model_dump(), **changes})
        except ValidationError as exc:
            raise UsageProblem("; ".join(e["msg"] for e in exc.errors())) from exc
        dep = client.set_log_settings(settings)
    out.print("log settings updated")
    _print(dep)
