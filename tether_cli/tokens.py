"""``tether tokens list|create|revoke``: the organization's user, agent and Nexus tokens.

A secret is printed once, when its token is created (on stdout alone, for scripts); the
control plane keeps only its hash. Sessions, sign-in links and run tokens are the control
plane's own and are not listed."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from tether_api.tokens import (
    ManagedTokenKind,
    NewAgentToken,
    NewNexusToken,
    NewUserToken,
    Token,
    TokenCreate,
    TokenScopeKind,
)
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.durations import parse_duration, parse_time
from tether_cli.render import (
    JsonOption,
    UsageProblem,
    err,
    errors,
    local_time,
    note,
    out,
    print_json,
    print_table,
    validation_message,
)

app = typer.Typer(help="User, agent and Nexus tokens: list, create (shown once), revoke.")


def status(token: Token) -> str:
    if token.revoked_at is not None:
        return f"[red]revoked[/] {local_time(token.revoked_at)}"
    if token.expires_at is not None and token.expires_at <= datetime.now(UTC):
        return f"[red]expired[/] {local_time(token.expires_at)}"
    if token.expires_at is not None:
        return f"[green]active[/] until {local_time(token.expires_at)}"
    return "[green]active[/]"


def scope_text(token: Token) -> str:
    if token.scope is TokenScopeKind.DEPLOYMENT:
        return f"deployment {token.deployment}"
    return "organization"


@app.command("list")
def list_tokens(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """The organization's user, agent and Nexus tokens, revoked and expired ones included (never
    their secrets)."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_tokens()
    if json_output:
        print_json(found)
        return
    if not found:
        note("no tokens: create one with `tether tokens create NAME`")
        return
    table = Table("id", "name", "kind", "scope", "created", "status")
    for t in found:
        table.add_row(
            str(t.id),
            escape(t.name),
            t.kind.value,
            escape(scope_text(t)),
            local_time(t.created_at),
            status(t),
        )
    print_table(table)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci or agent-eu.")],
    kind: Annotated[
        ManagedTokenKind,
        typer.Option(
            "--kind",
            help="user (the API and CLI), agent (an agent) or nexus (an agent's Nexus "
            "service, for Temporal workflows that run jobs: TETHER_NEXUS_TOKEN).",
        ),
    ] = ManagedTokenKind.USER,
    organization: Annotated[
        bool,
        typer.Option(
            "--organization",
            help="An agent token for every deployment of the organization (the agent then "
            "names its deployment: `tether agent run --deployment`). Default: the --deployment "
            "only.",
        ),
    ] = False,
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", help="It stops working after this long: 90d, 12h, 30m."),
    ] = None,
    expires_at: Annotated[
        str | None,
        typer.Option("--expires-at", help="It stops working then (ISO 8601, e.g. 2027-01-31)."),
    ] = None,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Create a token and print its secret, once. An agent token serves the --deployment
    (default: the connection's), or with --organization all of them; a nexus token serves
    the --deployment only."""
    with errors():
        if expires_in and expires_at:
            raise UsageProblem("give --expires-in or --expires-at, not both")
        expiry = None
        if expires_in:
            expiry = datetime.now(UTC) + parse_duration(expires_in, "--expires-in")
        elif expires_at:
            expiry = parse_time(expires_at, "--expires-at")
        if organization and kind is ManagedTokenKind.NEXUS:
            raise UsageProblem(
                "a nexus token serves one deployment: drop --organization and name it with "
                "--deployment"
            )
        if organization and kind is not ManagedTokenKind.AGENT:
            raise UsageProblem("--organization is for agent tokens: add --kind agent")
        connection = Connection.resolve(url, token, deployment)
        try:
            body: TokenCreate
            if kind is ManagedTokenKind.AGENT:
                body = NewAgentToken(
                    name=name,
                    kind="agent",
                    deployment=None if organization else connection.deployment,
                    scope=TokenScopeKind.ORGANIZATION if organization else None,
                    expires_at=expiry,
                )
            elif kind is ManagedTokenKind.NEXUS:
                body = NewNexusToken(
                    name=name, kind="nexus", deployment=connection.deployment, expires_at=expiry
                )
            else:
                body = NewUserToken(name=name, kind="user", expires_at=expiry)
        except ValidationError as exc:
            raise UsageProblem(validation_message(exc)) from None
        with TetherClient(connection) as client:
            created = client.create_token(body)
    if json_output:
        print_json(created)
        return
    info = created.info
    until = f", until {local_time(info.expires_at)}" if info.expires_at else ""
    err.print(
        f"created {info.kind.value} token {escape(info.name)!r} (id {info.id}) for the "
        f"{escape(scope_text(info))}{until}. The secret below is shown once: store it now."
    )
    out.print(created.token, markup=False, highlight=False, soft_wrap=True)


@app.command("revoke")
def revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `tether tokens list`).")],
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Revoke a user, agent or Nexus token: it stops working at once. An agent using it says so
    and exits (code 3); a user token's web sessions end with it."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.revoke_token(token_id)
    when = local_time(found.revoked_at) if found.revoked_at else "now"
    out.print(f"revoked {found.kind.value} token {escape(found.name)!r} (id {found.id}) at {when}")
