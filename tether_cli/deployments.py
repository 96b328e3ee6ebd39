"""``tether deployments``: the organization's deployments (list, create) and one
deployment's settings (concurrency, where logs and errors go, retention); ``tether
deployment`` is the same group, by its older name."""

from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from tether_api.logs import LogForwarding, LogSettings
from tether_api.retention import RetentionSettings
from tether_api.user_api import Deployment
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.render import (
    JsonOption,
    UsageProblem,
    errors,
    local_time,
    note,
    out,
    print_field,
    print_json,
    print_table,
)

WIDTH = 17  # the longest field name, and a space

app = typer.Typer(
    help="The organization's deployments: list (the default), create; one deployment's "
    "settings: show, set-logs, set-retention.",
    invoke_without_command=True,
)


@app.callback()
def deployments_main(
    ctx: typer.Context,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """The organization's deployments (`list`, the default, and `create`), and one
    deployment's settings (`show`, `set-logs`, `set-retention`)."""
    if ctx.invoked_subcommand is None:
        list_deployments(json_output, url, token, deployment)


@app.command("list")
def list_deployments(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List the organization's deployments: run concurrency, log forwarding, created; '*'
    marks the one the commands use (--deployment)."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_deployments()
        current = client.connection.deployment
    if json_output:
        print_json(found)
        return
    if not found:
        note("no deployments: create one with `tether deployments create NAME`")
        return
    table = Table("", "name", "run concurrency", "log forwarding", "created")
    for dep in found:
        table.add_row(
            "*" if dep.name == current else "",
            escape(dep.name),
            str(dep.run_concurrency_limit),
            dep.log_settings.forwarding.value,
            local_time(dep.created_at),
        )
    print_table(table)
    if all(dep.name != current for dep in found):
        note(
            f"the commands use deployment {current!r}, which does not exist: "
            f"`tether deployments create {current}` creates it"
        )


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The new deployment's name.", show_default=False)],
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Create a deployment in the organization (one that exists is left as it is). Its agents
    need an agent token: `tether tokens create NAME --kind agent --deployment DEPLOYMENT`."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        existed = any(dep.name == name for dep in client.list_deployments())
        dep = client.create_deployment(name)
    if json_output:
        print_json(dep)
        return
    if existed:
        out.print(f"deployment {escape(dep.name)} already exists; left as it is")
    else:
        out.print(f"created deployment {escape(dep.name)}")
    _print(dep)
    if not existed:
        note(
            f"next: an agent token for it, `tether tokens create agent-{dep.name} --kind agent "
            f"--deployment {dep.name}`; then `tether agent run --token ...`, and deploy with "
            f"`--deployment {dep.name}` (or TETHER_DEPLOYMENT={dep.name})"
        )


def _print(dep: Deployment) -> None:
    logs = dep.log_settings
    print_field("deployment", escape(dep.name), WIDTH)
    print_field("run concurrency", str(dep.run_concurrency_limit), WIDTH)
    print_field("log forwarding", logs.forwarding.value, WIDTH)
    print_field("log store", escape(logs.store_url or "-"), WIDTH)
    print_field("redact errors", "yes" if logs.redact_errors else "no", WIDTH)
    for what, rule in dep.retention.describe():
        print_field(what, rule, WIDTH)


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


def _days_option(what: str) -> Any:
    return typer.Option(
        help=f"Days {what} are kept (fractions allowed; 0: forever). Unset: as it is.",
        show_default=False,
    )


@app.command("set-retention")
def set_retention(
    run_days: Annotated[
        float | None, _days_option("finished runs, with their events and tags,")
    ] = None,
    max_runs: Annotated[
        int | None,
        typer.Option(
            help="Keep at most this many runs, the newest (runs that have not ended always "
            "stay); 0: no limit. Unset: as it is.",
            show_default=False,
        ),
    ] = None,
    tick_days: Annotated[float | None, _days_option("schedule and sensor ticks")] = None,
    status_history_days: Annotated[
        float | None, _days_option("code locations' status changes (the newest 50 stay)")
    ] = None,
    alert_days: Annotated[float | None, _days_option("sent or given-up alerts")] = None,
    backfill_days: Annotated[float | None, _days_option("finished backfills")] = None,
    asset_event_days: Annotated[
        float | None,
        _days_option("the asset catalog's history (each latest materialization stays)"),
    ] = None,
    defaults: Annotated[
        bool,
        typer.Option("--defaults", help="Start from the defaults instead of the current settings."),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Change how long the deployment keeps finished runs, ticks, status histories, alerts,
    backfills and asset history: what is given changes, the rest stays. The control plane's
    retention pass removes what is past them, a batch at a time; runs that have not ended
    are never removed."""
    given = {
        "run_days": run_days,
        "max_runs": max_runs,
        "tick_days": tick_days,
        "status_history_days": status_history_days,
        "alert_days": alert_days,
        "backfill_days": backfill_days,
        "asset_event_days": asset_event_days,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes and not defaults:
        raise UsageProblem(
            "nothing to change: give --run-days, --max-runs, --tick-days, "
            "--status-history-days, --alert-days, --backfill-days, --asset-event-days or "
            "--defaults"
        )
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        current = RetentionSettings() if defaults else client.get_deployment().retention
        try:
            wanted = RetentionSettings.model_validate({**current.model_dump(), **changes})
        except ValidationError as exc:
            raise UsageProblem(
                "; ".join(
                    f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors()
                )
            ) from exc
        # The PATCH of the deployment (TetherClient has set_log_settings; its twin for
        # retention would live there).
        body = {"retention": wanted.model_dump(mode="json")}
        dep = client.call(Deployment, "PATCH", "", json=body)
    out.print("retention updated")
    _print(dep)
