"""``tether sign-in-link``: a one-time link to the web UI, for a person who has a user token
on the command line and a browser elsewhere."""

from typing import Annotated

import typer

from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.render import errors

DEFAULT_TTL_MINUTES = 15


def sign_in_link(
    minutes: Annotated[
        int,
        typer.Option(
            "--minutes",
            envvar="TETHER_SIGN_IN_LINK_MINUTES",
            min=1,
            max=24 * 60,
            help="How long the link stays usable. It works once.",
        ),
    ] = DEFAULT_TTL_MINUTES,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Print a link that signs its first visitor in to the web UI as you (your user token's
    organization), once, within --minutes."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        typer.echo(client.sign_in_link(minutes * 60))
