"""The Docker launcher's agent-side settings: what the agent allows code locations to ask for,
how it reaches their containers, and how it pulls images.

Kept apart from ``docker.py`` so that the agent's configuration can be built (and documented)
without importing the Docker SDK.
"""

import hashlib
import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr

# Label keys every container carries: the launcher finds its containers again by these.
LABEL_PREFIX = "tether."
LABEL_MANAGED = "tether.managed"
LABEL_LABEL = "tether.label"
LABEL_WORKFLOW_ID = "tether.workflow-id"
LABEL_KIND = "tether.kind"
LABEL_ORGANIZATION = "tether.organization"
LABEL_DEPLOYMENT = "tether.deployment"
LABEL_LOCATION = "tether.location"
LABEL_GENERATION = "tether.generation"
LABEL_AGENT = "tether.agent"
LABEL_RUN_ID = "tether.run-id"
LABEL_PORT = "tether.port"

HOST_NETWORK = "host"

# The run worker's environment variable with the control plane's URL (activities/runs.py).
CONTROL_PLANE_URL_ENV = "TETHER_CONTROL_PLANE_URL"
# What the operator changes when run containers cannot reach the control plane.
WORKER_URL_SETTING = "TETHER_WORKER_CONTROL_PLANE_URL (--worker-control-plane-url)"


class RegistryAuth(BaseModel):
    """Credentials for pulling images from a private registry. They stay in the agent's
    environment: nothing about them reaches the control plane or a workflow history."""

    username: str = Field(description="Registry user name.")
    password: SecretStr = Field(description="Registry password or token.")
    server: str | None = Field(
        default=None,
        description="Registry host (e.g. ghcr.io); when set, only images from it use these.",
    )


class DockerSettings(BaseModel):
    """How the agent runs containers. Every field has a ``TETHER_DOCKER_*`` variable."""

    network: str | None = Field(
        default=None,
        description="Network for code server and run containers when the location names none: "
        "'host' (host networking), a network's name, or unset for Docker's default bridge.",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks a code location may ask for besides `network`; a location asking "
        "for another is an ERROR naming this setting.",
    )
    allow_host_mounts: bool = Field(
        default=False,
        description="Whether a location may mount host paths (bind mounts). Named volumes are "
        "always allowed.",
    )
    reach: Literal["auto", "published-port", "container-name"] = Field(
        default="auto",
        description="How the agent reaches a code server: over a port published on "
        "127.0.0.1, or by container name on a network it shares with it (when the agent "
        "itself runs in a container). 'auto': by name when the agent runs in a container and "
        "the container is on a named network, else a published port.",
    )
    code_server_port: int = Field(
        default=4000, ge=1, le=65535, description="Port code servers listen on in their container."
    )
    pull: Literal["missing", "always", "never"] = Field(
        default="missing",
        description="When to pull an image: only when it is not on the engine, before every "
        "start, or never (images are loaded by other means).",
    )
    registry_auth: RegistryAuth | None = Field(
        default=None, description="Credentials for a private registry."
    )
    keep_failed_runs: bool = Field(
        default=False,
        description="Keep the containers of failed runs for debugging (removed by hand), "
        "instead of removing every run container once its outcome is recorded.",
    )
    log_max_mb: int = Field(
        default=100,
        ge=0,
        description="Cap of one container's log: Docker's json-file driver, in two files of "
        "half this size each, so the latest half at least is always there for log tails (and "
        "kept failed runs' containers stay bounded). Applied only when the engine's default "
        "driver is json-file (Docker's own default, unbounded): another driver set in "
        "daemon.json (journald, local, fluentd...) is left alone. 0: never applied.",
    )
    docker_host: str | None = Field(
        default=None, description="Docker engine URL; default DOCKER_HOST or the local socket."
    )
    running_list_seconds: float = Field(
        default=0.25,
        gt=0,
        description="Watches check their containers twice a second; one list of the running "
        "containers, at most this old, answers them all.",
    )
    api_timeout_seconds: float = Field(
        default=60, gt=0, description="Timeout of one call to the Docker engine."
    )


# Dagster locations: where their run outputs are kept, in every container of the location.
DAGSTER_STORAGE_ENV = "TETHER_DAGSTER_STORAGE"
DAGSTER_STORAGE_TARGET = "/var/lib/tether-dagster"


DAGSTER_VOLUME_PREFIX = "tether-dagster-"


def dagster_volume(organization: str, deployment: str, location: str) -> str:
    """The named volume of a Dagster location's storage: found again by its name, as the
    location's containers are by their labels (which it carries too, from the agent that
    made it)."""
    digest = hashlib.sha256(f"{organization}:{deployment}:{location}".encode()).hexdigest()[:12]
    return f"{DAGSTER_VOLUME_PREFIX}{location[:40]}-{digest}"


def is_loopback_url(url: str | None) -> bool:
    """Whether ``url`` names this machine's loopback (or "any") address: from inside a
    container that is not on the host's network, such an address is the container itself."""
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def loopback_problem(url: str | None, network: str | None) -> str | None:
    """Why containers on ``network`` (None: Docker's default bridge) cannot reach the control
    plane at ``url``, and the settings that fix it; None when the URL alone tells nothing
    wrong. Worded to follow "cannot reach the control plane at URL"."""
    if network == HOST_NETWORK or not is_loopback_url(url):
        return None
    where = f"network {network!r}" if network else "Docker's default bridge network"
    return (
        f"a loopback address: on {where} that is the container itself; set the agent's "
        f"{WORKER_URL_SETTING} to an address containers can reach (the control plane's "
        "address on a network they share, or the host's with the control plane listening "
        f"there), or run them with host networking: TETHER_DOCKER_NETWORK={HOST_NETWORK}"
    )
