"""What ``tether dev`` prints: progress and problems, a line each on stderr (``say``), and
on stdout the panel that says the stack is up and how to use it."""

import contextlib
import shlex
import sys
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tether_api.home import tether_home
from tether_cli.dev.options import EXAMPLE_CONFIG, EXAMPLE_LOCATION, EXAMPLE_MODULE, Options

if TYPE_CHECKING:  # for the annotation only: state prints through this module
    from tether_cli.dev.state import Tokens

# out (stdout) gets the ready panel; err (stderr) progress and problems. Off a terminal (a
# log file, a test) nothing needs to fit a screen: a wide console keeps tokens and URLs on
# one line each instead of wrapping them.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str, style: str | None = None) -> None:
    """A line of Rich markup on stderr. After SIGHUP the terminal may be gone: the shutdown
    must go on without it."""
    with contextlib.suppress(OSError):
        err.print(message, style=style)


def ready_panel(
    o: Options,
    tokens: "Tokens",
    temporal_command: str,
    sign_in: str | None = None,
    nexus_endpoint: str | None = None,
) -> Panel:
    """Where everything is, the tokens, and commands to try; ``temporal_command`` is how to
    type the temporal CLI; ``sign_in`` a one-time link to the web UI."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(label: str, value: str) -> None:
        grid.add_row(label, Text(value))  # Text: a path or name is never read as markup

    row("Web UI", f"{o.url}/")
    if sign_in:
        row("Sign in", f"{sign_in}   (works once; `tether sign-in-link` prints another)")
    row("Control plane", f"{o.url}   (API docs: {o.url}/docs)")
    row("Temporal", f"{o.temporal}   ({'started here' if o.own_temporal else 'external'})")
    if o.temporal_ui:
        row("Temporal UI", o.temporal_ui)
    row("Organization", o.org)
    row("Deployment", o.deployment)
    row("User token", tokens.user + (" (kept from the last start)" if tokens.reused else ""))
    row("Agent token", tokens.agent)
    if nexus_endpoint:
        row(
            "Nexus endpoint",
            f"{nexus_endpoint}   (service tether.v1.Runs: run jobs from Temporal workflows)",
        )
    row("Logs", f"{o.logs}/{{temporal,controlplane,agent}}.log")
    row("Saved to", f"{o.dev_file}   (the tether commands read it)")

    # The user commands find dev.json through $TETHER_HOME: say so when this home is not
    # the one they would use.
    default_home = tether_home()
    same = default_home.resolve() == o.home.resolve()
    prefix = "" if same else f"TETHER_HOME={shlex.quote(str(o.home))} "
    if o.example:
        first = (
            f"{prefix}tether runs launch {EXAMPLE_LOCATION} etl "
            f"--config-json '{EXAMPLE_CONFIG}' --follow"
        )
    else:
        first = f"{prefix}tether deploy {EXAMPLE_LOCATION} --module {EXAMPLE_MODULE}"
    commands = Text(
        "\n".join(
            [
                first,
                f"{prefix}tether locations",
                f"{temporal_command} workflow list --address {o.temporal}",
            ]
        ),
        style="cyan",
    )
    return Panel(
        Group(grid, Text(""), Text("Try:", style="bold"), commands),
        title="[bold green]tether dev is running[/]",
        title_align="left",
        expand=False,
    )
