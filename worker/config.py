"""The agent's configuration: one pydantic model, every field described. The CLI fills it from
flags and ``TETHER_AGENT_*`` / ``TEMPORAL_*`` environment variables."""

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from activities.launchers.docker_settings import DockerSettings
from activities.launchers.retention import OutputRetention
from tether_api.home import tether_home
from tether_api.names import Name
from workflows.models import CodeLocationSettings, RunSettings
from workflows.names import DEFAULT_AGENT_QUEUE


def default_state_dir() -> Path:
    return tether_home() / "agent"


class TemporalTLS(BaseModel):
    enabled: bool = Field(default=False, description="Connect to Temporal over TLS.")
    server_root_ca_cert: Path | None = Field(
        default=None, description="PEM file of the CA that signed the server's certificate."
    )
    client_cert: Path | None = Field(default=None, description="PEM client certificate (mTLS).")
    client_private_key: Path | None = Field(default=None, description="PEM client key (mTLS).")
    domain: str | None = Field(default=None, description="Server name to verify, if different.")


class AgentConfig(BaseModel):
    control_plane_url: str = Field(description="Base URL of the control plane.")
    token: SecretStr = Field(
        description="An agent token (tether_agent_...): of the deployment, or of the whole "
        "organization (then `deployment` says which one this agent serves)."
    )
    deployment: Name | None = Field(
        default=None,
        description="The deployment this agent serves, sent with every call "
        "(X-Tether-Deployment). Needed with an organization-wide token; with a deployment "
        "token, it must be the token's own (or unset).",
    )
    agent_name: str = Field(
        default_factory=lambda: socket.gethostname().split(".")[0].lower()[:63] or "agent",
        description="Names this agent in the control plane and in its workflow ID.",
    )
    control_plane_ca_bundle: Path | None = Field(
        default=None, description="PEM CA bundle for the control plane's TLS certificate."
    )
    worker_control_plane_url: str | None = Field(
        default=None,
        description="URL run workers use to reach the control plane (default: the agent's).",
    )
    temporal_address: str = Field(default="127.0.0.1:7233", description="Temporal frontend.")
    namespace: str = Field(default="default", description="Temporal namespace.")
    task_queue: str | None = Field(
        default=None,
        description="Temporal task queue; default tether:{org}:{deployment}. Agents of different "
        "deployments must not share one: activities use this agent's token.",
    )
    queues: list[Name] = Field(
        default_factory=lambda: [DEFAULT_AGENT_QUEUE],
        min_length=1,
        description="The agent queues this agent serves: it runs only the code locations (and "
        "their runs) whose agent_queue is one of them. 'default' serves locations that name "
        "none.",
    )
    search_attributes: Literal["check", "add", "off"] = Field(
        default="check",
        description="Tether's Temporal search attributes (run status, job, location, "
        "deployment). check: use them when the namespace has them, else warn with the "
        "commands that add them and run without; add: register the missing ones (a dev "
        "server, or a cluster where the agent may); off: never set them.",
    )
    temporal_tls: TemporalTLS = Field(default_factory=TemporalTLS)
    temporal_api_key: SecretStr | None = Field(
        default=None, description="API key, e.g. for Temporal Cloud."
    )
    temporal_encryption_keys: SecretStr | None = Field(
        default=None,
        description="Encrypt every Temporal payload with these keys: 'id:base64key', "
        "comma-separated; the first encrypts, all decrypt (worker/codec.py).",
    )
    temporal_encryption_key_file: Path | None = Field(
        default=None, description="The same keys in a file, one 'id base64key' per line."
    )
    launcher: Literal["process", "docker"] = Field(
        default="process",
        description="How user code runs: 'process' (local processes) or 'docker' (containers).",
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where the process launcher keeps pid files and logs.",
    )
    poll_wait_seconds: float = Field(default=20, ge=0, le=30)
    heartbeat_interval_seconds: float = Field(default=15, gt=0)
    max_concurrent_activities: int = Field(
        default=1000,
        description="Activity slots; each running run and code server holds one for its watch.",
    )
    blocking_threads: int = Field(
        default=64,
        ge=4,
        description="Threads for launcher calls (process checks, Docker API calls): every "
        "watch uses one for a moment twice a second, so a busy agent needs more than Python's "
        "default of cores + 4.",
    )
    graceful_shutdown_seconds: float = Field(
        default=5, description="How long running activities get to finish on SIGTERM."
    )
    code_locations: CodeLocationSettings = Field(default_factory=CodeLocationSettings)
    runs: RunSettings = Field(default_factory=RunSettings)
    docker: DockerSettings = Field(
        default_factory=DockerSettings, description="The Docker launcher's settings."
    )
    output_retention: OutputRetention = Field(
        default_factory=OutputRetention,
        description="What the process launcher keeps of finished processes' output folders "
        "(TETHER_OUTPUT_RETENTION_*).",
    )
