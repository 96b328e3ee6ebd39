"""``tether controlplane``: serve, bootstrap, migrate."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tether_cli.files import write_private


def _default_database_url() -> str:
    # Imported here: the control plane's settings need its extra, and `tether --help` (or
    # any other command) must work without it.
    from tether_controlplane.settings import default_database_url

    return default_database_url()


USER_TOKEN_FILE = "user.token"
AGENT_TOKEN_FILE = "agent.token"

app = typer.Typer(help="Run and administer the control plane.", no_args_is_help=True)
err = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TETHER_DATABASE_URL",
        help="SQLAlchemy URL [default: SQLite under $TETHER_HOME, ~/.tether]",
        show_default=False,
    ),
]


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(envvar="TETHER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT")] = 3000,
    log_level: Annotated[str, typer.Option(envvar="TETHER_LOG_LEVEL")] = "info",
) -> None:
    """Serve the REST API (OpenAPI at /docs). Migrates the database on start."""
    import uvicorn

    from tether_controlplane.api.app import create_app
    from tether_controlplane.settings import Settings

    settings = Settings(database_url=db or _default_database_url())
    where = _safe(settings.database_url)
    err.print(f"[bold]tether control plane[/] on http://{host}:{port}  (database {where})")
    # Long-polls and event streams hold requests open for up to 20 s; on shutdown they get 2 s
    # (clients retry against the next process) instead of delaying the stop.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=2,
    )


@app.command()
def bootstrap(
    org: Annotated[str, typer.Option(help="Organization name (created if missing).")],
    deployment: Annotated[str, typer.Option(help="Deployment name (created if missing).")],
    db: DbOption = None,
    concurrency: Annotated[
        int, typer.Option(help="Run concurrency limit of a new deployment.")
    ] = 10,
    token_dir: Annotated[
        Path | None,
        typer.Option(
            "--token-dir",
            envvar="TETHER_TOKEN_DIR",
            help="Write the tokens to DIR/user.token and DIR/agent.token (mode 0600) instead "
            "of printing them. A token already there that still works for this organization "
            "(and, for the agent token, deployment) is kept, not minted again.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create the organization and deployment if missing; print a new user and agent token
    (or write them to --token-dir, keeping the ones there that still work)."""
    from tether_api.names import check_name
    from tether_controlplane.bootstrap import bootstrap as run_bootstrap

    try:
        check_name(org, "organization name")
        check_name(deployment, "deployment name")
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    user_file = agent_file = None
    if token_dir is not None:
        user_file, agent_file = token_dir / USER_TOKEN_FILE, token_dir / AGENT_TOKEN_FILE
    result = run_bootstrap(
        db or _default_database_url(),
        org,
        deployment,
        concurrency,
        keep_user_token=_read_token(user_file),
        keep_agent_token=_read_token(agent_file),
    )
    if user_file is not None and agent_file is not None:
        try:
            if not result.user_token_reused:
                write_private(user_file, result.user_token + "\n")
            if not result.agent_token_reused:
                write_private(agent_file, result.agent_token + "\n")
        except OSError as exc:
            err.print(
                f"[red]error:[/] cannot write the tokens to {token_dir}: {exc}; "
                "give a writable --token-dir"
            )
            raise typer.Exit(1) from exc
    if json_output:
        typer.echo(
            result.model_dump_json(
                include={
                    "organization",
                    "deployment",
                    "user_token",
                    "agent_token",
                    "user_token_reused",
                    "agent_token_reused",
                }
            )
        )
        return
    err.print(f"organization [bold]{org}[/], deployment [bold]{deployment}[/] ready.")
    if user_file is not None and agent_file is not None:
        for what, path, reused in (
            ("user token", user_file, result.user_token_reused),
            ("agent token", agent_file, result.agent_token_reused),
        ):
            state = "kept, still valid" if reused else "new"
            typer.echo(f"{what + ':':<13}{path}  ({state})")
        return
    err.print("These tokens are shown once; store them now.")
    typer.echo(f"user_token:  {result.user_token}")
    typer.echo(f"agent_token: {result.agent_token}")


def _read_token(path: Path | None) -> str | None:
    """The token saved in ``path``, or None when there is none to reuse."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


@app.command()
def migrate(db: DbOption = None) -> None:
    """Upgrade the database schema to the latest revision."""
    from tether_controlplane import migrate as migrations
    from tether_controlplane.db import Database

    database = Database(db or _default_database_url())
    try:
        migrations.upgrade(database.engine)
        err.print(f"database at revision {migrations.current_revision(database.engine)}")
    finally:
        database.dispose()


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
