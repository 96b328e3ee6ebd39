"""Control plane settings: every one has a documented default and a TETHER_ env variable."""

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tether_api.home import tether_home


def default_state_dir() -> Path:
    return tether_home()


def default_database_url() -> str:
    return f"sqlite:///{default_state_dir() / 'tether.db'}"


class Settings(BaseSettings):
    """Read from the environment with the prefix ``TETHER_`` (e.g. ``TETHER_DATABASE_URL``)."""

    model_config = SettingsConfigDict(env_prefix="TETHER_", extra="ignore")

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL. SQLite file under the state directory by default; "
        "postgresql+psycopg://... for PostgreSQL.",
    )
    default_run_concurrency_limit: int = Field(
        default=10, ge=1, description="Concurrency limit of a new deployment."
    )
    run_start_timeout_seconds: float = Field(
        default=300.0, gt=0, description="A run STARTING longer than this becomes FAILURE."
    )
    run_heartbeat_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A STARTED run whose worker sent nothing for this long becomes FAILURE.",
    )
    agent_heartbeat_timeout_seconds: float = Field(
        default=60.0, gt=0, description="An agent silent this long is shown as unavailable."
    )
    request_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a claimed request stays invisible to others."
    )
    long_poll_max_seconds: float = Field(
        default=20.0, ge=0, le=30, description="Longest hold of an agent's long-poll."
    )
    run_wait_max_seconds: float = Field(
        default=60.0,
        ge=0,
        le=60,
        description="Longest hold of a GET of a run with ?wait_seconds= (the agent's Nexus "
        "service awaits runs with it): past it, the run is answered as it is then. Lower it "
        "below a proxy's read timeout.",
    )
    monitor_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often timeouts are checked and queued runs admitted."
    )
    recheck_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a waiting long-poll or event stream re-reads the database; "
        "wake-ups within one process are immediate, this covers other replicas.",
    )
    scheduler_enabled: bool = Field(
        default=True,
        description="Run the scheduler here. Several replicas may all run it: a tick still "
        "creates one run.",
    )
    scheduler_max_sleep_seconds: float = Field(
        default=1.0,
        gt=0,
        description="The scheduler sleeps until the next tick, but at most this long, so a "
        "schedule turned on or deployed meanwhile is seen.",
    )
    backfills_enabled: bool = Field(
        default=True,
        description="Run the backfill loop here (it launches backfills' runs). Several "
        "replicas may all run it: a row lock keeps each partition to one run.",
    )
    backfill_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the backfill loop looks at active backfills; the end of one "
        "of their runs on this replica wakes it sooner.",
    )
    tick_grace_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long past its timeout a tick evaluated in a code server (a sensor's, "
        "a schedule's whose config is code) may wait for an agent's answer before it fails.",
    )
    request_retention_hours: float = Field(
        default=72.0,
        gt=0,
        description="Finished agent requests are deleted this long after they finished.",
    )
    skipped_tick_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="SKIPPED sensor ticks (nothing asked for) are deleted after this long; "
        "ticks that created runs or failed are kept.",
    )
    # Retention (services/retention.py): how often the pass runs, how much one transaction
    # removes, and the audit log's own rule (the deployments' rules are theirs: PATCH).
    retention_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the retention pass removes what is past the deployments' "
        "rules (and finished requests, SKIPPED sensor ticks, old audit entries).",
    )
    retention_batch_size: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Rows one retention transaction removes at most (runs: their events go "
        "in transactions of their own of this many rows), so that no lock is held long.",
    )
    retention_pass_max_seconds: float = Field(
        default=10.0,
        gt=0,
        description="One retention pass stops after this long and goes on at the next, so "
        "that a first pass over years of history does not hold up the monitor's other work.",
    )
    audit_retention_days: float = Field(
        default=400.0,
        ge=0,
        description="Audit log entries older than this are removed by the retention pass "
        "(nothing else can delete them); 0: kept forever.",
    )
    alert_delivery_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often due alerts are looked for and sent."
    )
    alert_delivery_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long an alert being sent is left alone; after a crash mid-send, "
        "the time until it is sent again.",
    )
    session_lifetime_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a web UI sign-in lasts."
    )
    secure_cookies: bool | None = Field(
        default=None,
        description="Mark the web UI's session cookie Secure. Unset: when the request came "
        "over HTTPS (behind a TLS proxy, run uvicorn with --proxy-headers).",
    )
    public_url: str | None = Field(
        default=None,
        description="The URL people open the web UI at (https://tether.example.com), when a "
        "proxy in front changes the Host header or ends TLS: forms posted from it are "
        "accepted, and an https one makes the session cookie Secure.",
    )
    temporal_ui_url: str | None = Field(
        default=None,
        description="The Temporal UI the web UI links runs' workflows to (`tether dev` sets "
        "its own); unset or empty: no links.",
    )
    temporal_namespace: str = Field(
        default="default", description="The Temporal namespace the agents' workflows run in."
    )
    max_request_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="Larger request bodies are refused (413)."
    )
    # --- Replicas behind a load balancer (issue 24) ---------------------------------------
    replica_url: str | None = Field(
        default=None,
        description="The URL the other control-plane replicas reach this one at "
        "(http://10.0.0.5:8000, not the load balancer's): a log fetch (forwarding 'local') "
        "waiting here names it, so the replica the agent's answer lands on relays the answer "
        "here. Unset with one replica; with several and unset, a fetch whose answer lands on "
        "another replica times out (504) and can be asked again.",
    )
    relay_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a replica waits for another to take a relayed log-fetch answer.",
    )
    # Prometheus metrics (tether_controlplane/metrics.py): GET /metrics with this bearer
    # secret. Off (404) while unset.
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Serve Prometheus metrics at /metrics to callers that send "
        "'Authorization: Bearer <this secret>' (Prometheus: `authorization: "
        "{credentials_file: ...}`). Unset: /metrics answers 404. At least 16 characters, "
        "e.g. `openssl rand -hex 24`.",
    )

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError(
                "TETHER_METRICS_TOKEN must be at least 16 characters: make one with "
                "`openssl rand -hex 24`"
            )
        return value
