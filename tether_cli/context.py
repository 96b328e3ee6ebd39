"""Where the user commands connect: control plane URL, user token, deployment.

Each comes from its flag, else its environment variable (Typer resolves both), else the
``dev.json`` that ``tether dev`` writes under ``$TETHER_HOME``, else a default.
"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, Field

from tether_api.home import tether_home
from tether_cli.render import UsageProblem

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_DEPLOYMENT = "prod"
DEV_FILE_NAME = "dev.json"  # under $TETHER_HOME
NO_TOKEN = "no user token: pass --token or set TETHER_TOKEN (`tether dev` prints one)"

_PANEL = "Connection"

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="TETHER_URL",
        help=f"Control plane URL (default: $TETHER_HOME/dev.json's, else {DEFAULT_URL}).",
        show_default=False,
        rich_help_panel=_PANEL,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TETHER_TOKEN",
        help="User token, tether_user_... (default: $TETHER_HOME/dev.json's).",
        show_default=False,
        rich_help_panel=_PANEL,
    ),
]
DeploymentOption = Annotated[
    str | None,
    typer.Option(
        "--deployment",
        envvar="TETHER_DEPLOYMENT",
        help=f"Deployment (default: $TETHER_HOME/dev.json's, else {DEFAULT_DEPLOYMENT}).",
        show_default=False,
        rich_help_panel=_PANEL,
    ),
]


class DevFile(BaseModel):
    """What ``tether dev`` writes to ``$TETHER_HOME/dev.json``; unknown keys are ignored.

    The user commands read the connection from it; ``tether dev`` itself reads back the
    tokens on its next start. The fields are in the order they are written."""

    url: str | None = Field(default=None, description="The dev control plane's URL.")
    organization: str | None = Field(default=None, description="The dev organization.")
    deployment: str | None = Field(default=None, description="The dev deployment.")
    user_token: str | None = Field(default=None, description="A user token for it.")
    agent_token: str | None = Field(default=None, description="The dev agent's token.")
    temporal_address: str | None = Field(
        default=None, description="The Temporal server the dev agent uses (host:port)."
    )
    temporal_ui: str | None = Field(
        default=None, description="The Temporal Web UI's URL; null when there is none."
    )
    # Added after the others: older files lack it (a new one is minted), and the order the
    # fields were always written in stays.
    nexus_token: str | None = Field(
        default=None, description="The dev agent's Nexus token (its Nexus service's)."
    )


class Connection(BaseModel):
    """The resolved connection of a user command."""

    url: str = Field(description="Control plane base URL, without a trailing slash.")
    token: str = Field(description="User token, sent as `Authorization: Bearer`.", repr=False)
    deployment: str = Field(description="Deployment every call is scoped to.")

    @classmethod
    def resolve(cls, url: str | None, token: str | None, deployment: str | None) -> "Connection":
        """Fill what the flags and environment left unset from dev.json, then defaults.
        Raises UsageProblem when no token is found anywhere."""
        dev = DevFile()
        if url is None or token is None or deployment is None:
            dev = read_dev_file()
        token = token or dev.user_token
        if not token:
            raise UsageProblem(NO_TOKEN)
        return cls(
            url=(url or dev.url or DEFAULT_URL).rstrip("/"),
            token=token,
            deployment=deployment or dev.deployment or DEFAULT_DEPLOYMENT,
        )


def parse_dev_file(path: Path) -> DevFile:
    """The dev.json at ``path``; empty when there is none. Raises OSError when it cannot be
    read, ValueError (pydantic's ValidationError is one) when it is not such a file."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DevFile()
    return DevFile.model_validate(raw)


def read_dev_file() -> DevFile:
    """The dev.json written by ``tether dev``; empty when there is none."""
    path = tether_home() / DEV_FILE_NAME
    try:
        return parse_dev_file(path)
    except (OSError, ValueError) as exc:
        # A broken file would otherwise silently send requests with the wrong identity.
        raise UsageProblem(
            f"cannot read {path}: {exc}; fix or delete it, or pass --url/--token"
        ) from exc
