"""The Typer application: one sub-app per area."""

import typer

from tether_cli import (
    agent,
    agents,
    alerts,
    assets,
    audit,
    backfills,
    codec,
    controlplane,
    deployments,
    dev,
    locations,
    nexus,
    runs,
    schedules,
    sensors,
    signin,
    tokens,
)

app = typer.Typer(
    name="tether",
    help="Tether: a self-hostable hybrid deployment orchestrator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    # Click's plain help, not Rich's panels: at 80 columns Rich's option table leaves the
    # help a narrow column and cuts long words, environment variable names among them;
    # Click wraps the help beside the options and never breaks a word.
    rich_markup_mode=None,
)
app.add_typer(controlplane.app, name="controlplane")
app.add_typer(agent.app, name="agent")
app.command("dev")(dev.dev)
app.command("deploy")(locations.deploy)
app.command("redeploy")(locations.redeploy)
app.add_typer(locations.app, name="locations")
app.command("agents")(agents.list_agents)
app.add_typer(deployments.app, name="deployments")
# The older name of the same commands (`tether deployment show`), kept for scripts.
app.add_typer(deployments.app, name="deployment", hidden=True)
app.command("remove")(locations.remove)
app.add_typer(runs.app, name="runs")
app.add_typer(backfills.app, name="backfill")
app.add_typer(assets.app, name="assets")
app.add_typer(schedules.app, name="schedules")
app.add_typer(sensors.app, name="sensors")
app.add_typer(alerts.app, name="alerts")
app.command("sign-in-link")(signin.sign_in_link)
app.command("codec-server")(codec.codec_server)
app.add_typer(tokens.app, name="tokens")
app.command("audit")(audit.audit)
app.add_typer(nexus.app, name="nexus")

_FORWARD = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command("code-server", context_settings=_FORWARD, add_help_option=False)
def code_server(ctx: typer.Context) -> None:
    """Serve a code location's definitions over HTTP (see `tether code-server --help`)."""
    from tether_sdk import cli as sdk_cli

    raise typer.Exit(sdk_cli.code_server_main(list(ctx.args)))


@app.command("run-worker", context_settings=_FORWARD, add_help_option=False)
def run_worker(ctx: typer.Context) -> None:
    """Execute one run and stream its events (see `tether run-worker --help`)."""
    from tether_sdk import cli as sdk_cli

    raise typer.Exit(sdk_cli.run_worker_main(list(ctx.args)))
