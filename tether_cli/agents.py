"""``tether agents``: the deployment's agents, as the control plane last heard from them."""

from rich.markup import escape
from rich.table import Table

from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.render import (
    JsonOption,
    duration,
    errors,
    local_time,
    note,
    print_json,
    print_table,
)


def list_agents(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List the deployment's agents: available (a heartbeat within the timeout), version,
    launcher, agent queues, last heartbeat."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_agents()
        if json_output:
            print_json(found)
            return
        if not found:
            note(
                f"no agent has connected to deployment {client.connection.deployment!r}; "
                "start one with `tether agent run` (or `tether dev`)"
            )
            return
    table = Table("name", "available", "version", "launcher", "queues", "last heartbeat")
    for agent in sorted(found, key=lambda a: a.name):
        ago = duration(agent.last_heartbeat_at, None)
        table.add_row(
            escape(agent.name),
            "[green]yes[/]" if agent.available else "[red]no[/]",
            escape(agent.version or "-"),
            escape(agent.launcher or "-"),
            escape(", ".join(agent.queues)),
            f"{local_time(agent.last_heartbeat_at)} ({ago} ago)",
        )
    print_table(table)
