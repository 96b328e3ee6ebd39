"""``tether audit``: who did what, and when, in the organization (newest first)."""

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.durations import parse_when
from tether_cli.render import JsonOption, errors, local_time, note, print_json, print_table


def audit(
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action", help="Only this action, e.g. run.submit or token.revoke (repeatable)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only from then on: a time ago (1h, 7d) or ISO 8601."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only before then: a time ago (1h, 7d) or ISO 8601."),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Only entries whose actor's name holds this text."),
    ] = None,
    of_deployment: Annotated[
        str | None,
        typer.Option("--only-deployment", help="Only what concerned this deployment."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """The organization's audit log: deploys, runs submitted and terminated, tokens created
    and revoked, policy and settings changes; by which token, when. It is append-only."""
    with errors():
        when = parse_when(since, "--since") if since else None
        before = parse_when(until, "--until") if until else None
        with TetherClient(Connection.resolve(url, token, deployment)) as client:
            found = client.audit(action or [], when, of_deployment, limit, before, actor)
    if json_output:
        print_json(found)
        return
    if not found:
        note("no audit entries match")
        return
    table = Table("when", "who", "action", "deployment", "target", "details")
    for e in found:
        table.add_row(
            local_time(e.at),
            escape(f"{e.actor_name} ({e.actor_kind})"),
            escape(e.action),
            escape(e.deployment or "-"),
            escape(e.target),
            escape(json.dumps(e.details, separators=(",", ":")) if e.details else "-"),
        )
    print_table(table)
