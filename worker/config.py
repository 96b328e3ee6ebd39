"""The agent's configuration: one pydantic model, every field described. The CLI fills it from
flags and ``TETHER_AGENT_*`` / ``TEMPORAL_*`` environment variables.

Everything that can be wrong with it is found before the agent connects anywhere: the model's
validators check values, ``config_problems`` what they point at (files, keys, the state
directory), and every message names the setting as the operator wrote it (``SETTINGS``), so
that ``tether agent run`` exits 2 with it instead of failing later as if a server were down."""

import math
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from activities.launchers import registry as launchers
from activities.launchers.docker_settings import DockerSettings
from activities.launchers.retention import OutputRetention
from tether_api.home import tether_home
from tether_api.names import DEFAULT_AGENT_QUEUE, NAME_PATTERN, Name
from worker.nexus_settings import NexusSettings
from workflows.models import CodeLocationSettings, RunSettings

# How `tether agent run` sets each field (its environment variable and flag).
SETTINGS: dict[str, str] = {
    "control_plane_url": "TETHER_CONTROL_PLANE_URL (--control-plane)",
    "token": "TETHER_AGENT_TOKEN (--token)",
    "deployment": "TETHER_DEPLOYMENT (--deployment)",
    "agent_name": "TETHER_AGENT_NAME (--name)",
    "control_plane_ca_bundle": "TETHER_CONTROL_PLANE_CA (--control-plane-ca)",
    "worker_control_plane_url": "TETHER_WORKER_CONTROL_PLANE_URL (--worker-control-plane-url)",
    "temporal_address": "TEMPORAL_ADDRESS (--temporal-address)",
    "namespace": "TEMPORAL_NAMESPACE (--namespace)",
    "task_queue": "TETHER_TASK_QUEUE (--task-queue)",
    "queues": "TETHER_AGENT_QUEUES (--queue)",
    "search_attributes": "TETHER_SEARCH_ATTRIBUTES (--search-attributes)",
    "temporal_tls": "TEMPORAL_TLS_* (--temporal-tls-*)",
    "temporal_tls.enabled": "TEMPORAL_TLS (--temporal-tls)",
    "temporal_tls.server_root_ca_cert": "TEMPORAL_TLS_CA (--temporal-tls-ca)",
    "temporal_tls.client_cert": "TEMPORAL_TLS_CERT (--temporal-tls-cert)",
    "temporal_tls.client_private_key": "TEMPORAL_TLS_KEY (--temporal-tls-key)",
    "temporal_api_key": "TEMPORAL_API_KEY (--temporal-api-key)",
    "temporal_encryption_keys": "TETHER_TEMPORAL_ENCRYPTION_KEYS (--temporal-encryption-keys)",
    "temporal_encryption_key_file": (
        "TETHER_TEMPORAL_ENCRYPTION_KEY_FILE (--temporal-encryption-key-file)"
    ),
    "launcher": "TETHER_LAUNCHER (--launcher)",
    "state_dir": "TETHER_AGENT_STATE_DIR (--state-dir)",
    "poll_wait_seconds": "TETHER_AGENT_POLL_WAIT (--poll-wait)",
    "heartbeat_interval_seconds": "TETHER_AGENT_HEARTBEAT_INTERVAL (--heartbeat-interval)",
    "blocking_threads": "TETHER_AGENT_BLOCKING_THREADS (--blocking-threads)",
}
# The groups set field by field from the environment (worker/settings.py).
GROUP_PREFIXES = {
    "code_locations": "TETHER_CODE_LOCATION_",
    "runs": "TETHER_RUN_",
    "docker": "TETHER_DOCKER_",
    "output_retention": "TETHER_OUTPUT_RETENTION_",
    "nexus": "TETHER_NEXUS_",
}
NAME_RULE = "use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"


class AgentConfigError(Exception):
    """A setting the agent cannot run with; the message names it and the fix. ``tether agent
    run`` exits 2 with it."""


def setting_name(loc: Sequence[int | str]) -> str:
    """The setting behind a pydantic error location of AgentConfig."""
    path = [part for part in loc if isinstance(part, str)]
    key = ".".join(path)
    if key in SETTINGS:
        return SETTINGS[key]
    if len(path) > 1 and path[0] in GROUP_PREFIXES:
        if path[:2] == ["docker", "registry_auth"] and len(path) > 2:
            return f"TETHER_DOCKER_REGISTRY_{path[2].upper()}"
        return GROUP_PREFIXES[path[0]] + path[1].upper()
    return key or "the agent's configuration"


def describe_errors(
    exc: ValidationError, name: Callable[[Sequence[int | str]], str] = setting_name
) -> list[str]:
    """One line per error, ``SETTING: what is wrong``. Never the value: it may be a secret."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        if (
            error["type"] == "string_pattern_mismatch"
            and (error.get("ctx") or {}).get("pattern") == NAME_PATTERN
        ):
            message = f"not a valid name: {NAME_RULE}"
        lines.append(f"{name(error['loc'])}: {message}")
    return lines


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "not an http(s) URL; give the control plane's base URL, e.g. "
            "https://tether.example.com or http://127.0.0.1:3000"
        )
    return value


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

    @model_validator(mode="after")
    def _pair(self) -> "TemporalTLS":
        if (self.client_cert is None) != (self.client_private_key is None):
            raise ValueError(
                "mTLS needs both TEMPORAL_TLS_CERT (--temporal-tls-cert) and TEMPORAL_TLS_KEY "
                "(--temporal-tls-key); give both, or neither"
            )
        return self


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
    agent_name: Name = Field(
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
        f"their runs) whose agent_queue is one of them. '{DEFAULT_AGENT_QUEUE}' serves locations "
        "that name none.",
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
    launcher: str = Field(
        default="process",
        description=f"How user code runs: {launchers.describe()}.",
        json_schema_extra={"enum": [*launchers.launcher_names()]},
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
    nexus: NexusSettings = Field(
        default_factory=NexusSettings,
        description="The Nexus service tether.v1.Runs (TETHER_NEXUS_*): hosted when a token "
        "is set.",
    )

    @field_validator("control_plane_url", "worker_control_plane_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("launcher")
    @classmethod
    def _launcher(cls, value: str) -> str:
        # The registry's names: each backend's module is imported only once it is used.
        return launchers.check_name(value)

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("empty; create one with `tether tokens create NAME --kind agent`")
        return value

    @field_validator("temporal_address")
    @classmethod
    def _address(cls, value: str) -> str:
        # Temporal's client takes host:port, not a URL: a scheme would fail only at connect
        # time, looking like a server that is down.
        host, _, port = value.rpartition(":")
        if not host or "/" in value or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                "not host:port; e.g. 127.0.0.1:7233, or NAMESPACE.ACCOUNT.tmprl.cloud:7233 "
                "(no http:// in front)"
            )
        return value

    @field_validator("poll_wait_seconds", "heartbeat_interval_seconds")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        return value


def config_problems(config: AgentConfig) -> list[str]:
    """What the configuration points at that the agent could not use: TLS and CA files that
    are missing or not PEM, encryption keys that do not parse, a state directory it cannot
    write. One line each, naming the setting and the fix; empty when all is well."""
    from worker.codec import KeySettingError, keys_from_environment

    problems = []
    tls = config.temporal_tls
    files = {
        "temporal_tls.server_root_ca_cert": tls.server_root_ca_cert,
        "temporal_tls.client_cert": tls.client_cert,
        "temporal_tls.client_private_key": tls.client_private_key,
        "control_plane_ca_bundle": config.control_plane_ca_bundle,
    }
    for field, path in files.items():
        if path is None:
            continue
        try:
            pem = path.read_bytes()
        except OSError as exc:
            problems.append(
                f"{SETTINGS[field]}: cannot read {path}: {exc.strerror}; give the path of a "
                "readable PEM file"
            )
            continue
        if b"-----BEGIN " not in pem:
            problems.append(f"{SETTINGS[field]}: {path} is not a PEM file (no -----BEGIN line)")
    try:
        keys = config.temporal_encryption_keys
        keys_from_environment(
            keys.get_secret_value() if keys else "", config.temporal_encryption_key_file
        )
    except KeySettingError as exc:
        problems.append(str(exc))  # it names the setting and the fix
    state_dir = Path(config.state_dir)
    name = SETTINGS["state_dir"]
    if state_dir.exists() and not state_dir.is_dir():
        problems.append(f"{name}: {state_dir} is a file; give a directory")
    else:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(
                f"{name}: cannot create {state_dir}: {exc.strerror}; give a directory the "
                "agent may write"
            )
        else:
            if not os.access(state_dir, os.W_OK | os.X_OK):
                problems.append(f"{name}: cannot write in {state_dir}; give one the agent may")
    return problems
