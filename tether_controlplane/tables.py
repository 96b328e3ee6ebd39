"""SQLAlchemy ORM tables. Alembic migrations under ``migrations/`` must match these."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tether_api.alerts import AlertEvent, DeliveryStatus
from tether_api.enums import (
    AutomationStatus,
    CodeLocationStatus,
    EventType,
    MissedTicks,
    RequestStatus,
    RequestType,
    RunStatus,
    SensorKind,
    TickStatus,
)
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_controlplane.token_secrets import TokenKind


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no time zone."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


E = TypeVar("E", bound=StrEnum)


class EnumString(TypeDecorator[E]):
    """A ``StrEnum`` column stored as its value in a ``VARCHAR(length)``: the very strings
    the plain ``String`` columns held (no migration, no CHECK constraint), read back as
    members. A string that is no value of the enum is refused, written or read."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int) -> None:
        too_long = [m.value for m in enum_class if len(m.value) > length]
        if too_long:
            raise ValueError(f"{enum_class.__name__} values longer than {length}: {too_long}")
        super().__init__(length)
        self.enum_class = enum_class
        self.length = length
        # Keyed by member or by value alike: a StrEnum member hashes and compares as its value.
        self._values: dict[str, str] = {m: m.value for m in enum_class}
        self._members: dict[str, E] = {m.value: m for m in enum_class}

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            return self._values[value]
        except KeyError:
            raise ValueError(f"{value!r} is not a {self.enum_class.__name__}") from None

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        if value is None:
            return None
        try:
            return self._members[value]
        except KeyError:
            raise ValueError(f"{value!r} stored is not a {self.enum_class.__name__}") from None

    @property
    def python_type(self) -> type[E]:
        return self.enum_class


# BigInteger primary keys are plain INTEGER on SQLite so that they autoincrement there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(63))
    run_concurrency_limit: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # tether_api.logs.LogSettings as JSON; null: the defaults (forward everything).
    log_settings: Mapped[dict[str, Any] | None] = mapped_column()
    # tether_api.retention.RetentionSettings as JSON; null: the defaults.
    retention: Mapped[dict[str, Any] | None] = mapped_column()


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TokenKind] = mapped_column(EnumString(TokenKind, 10))
    # What its owner calls it (user and agent tokens); the audit log names actors by it.
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    # None on an agent token: it serves every deployment of the organization (the agent
    # names one per call); user, session and sign-in tokens have none either.
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"))
    run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    # The token this one was made from (a session's user token): revoking it ends this one.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))


class CodeLocationRow(Base):
    __tablename__ = "code_locations"
    __table_args__ = (UniqueConstraint("deployment_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    name: Mapped[str] = mapped_column(String(63))
    spec: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[CodeLocationStatus] = mapped_column(EnumString(CodeLocationStatus, 20))
    generation: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[dict[str, Any] | None] = mapped_column()
    snapshot: Mapped[dict[str, Any] | None] = mapped_column()
    snapshot_updated_at: Mapped[datetime | None] = mapped_column()
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the current generation was asked for (a deploy, a changed spec, a redeploy).
    deployed_at: Mapped[datetime | None] = mapped_column()


class CodeLocationStatusRow(Base):
    __tablename__ = "code_location_status_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_location_id: Mapped[int] = mapped_column(ForeignKey("code_locations.id"), index=True)
    status: Mapped[CodeLocationStatus] = mapped_column(EnumString(CodeLocationStatus, 20))
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The run list reads each filter newest first from an index ending in pk, so a page
        # is one index range however many runs there are (bench/bench_scale.py shows the
        # plans): by status, unfiltered or by time (runwindow), by job, by code location.
        # Status first: the monitor's passes look for runs of a status (stuck STARTING,
        # silent, QUEUED) in every deployment; admission counts a deployment's active runs.
        Index("ix_runs_status", "status", "deployment_id", "pk"),
        Index("ix_runs_deployment_pk", "deployment_id", "pk"),
        Index("ix_runs_deployment_job", "deployment_id", "job", "pk"),
        Index("ix_runs_deployment_location", "deployment_id", "code_location", "pk"),
        # A create's idempotency key is one run per deployment (NULLs: any number of runs).
        UniqueConstraint(
            "deployment_id", "idempotency_key", name="uq_runs_deployment_idempotency_key"
        ),
        # The runs a Temporal workflow started (?caller_workflow_id=), newest first.
        Index("ix_runs_deployment_caller", "deployment_id", "caller_workflow_id", "pk"),
        # A run-status sensor's news: its status's runs that ended after its cursor, in the
        # order they ended (without it, every tick read all the runs of that status).
        Index("ix_runs_deployment_status_ended", "deployment_id", "status", "ended_at", "pk"),
    )
    # pk orders runs (FIFO admission, paging); id is the public identifier.
    pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    code_location: Mapped[str] = mapped_column(String(63))
    job: Mapped[str] = mapped_column(String(63))
    run_config: Mapped[dict[str, Any]] = mapped_column()
    tags: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[RunStatus] = mapped_column(EnumString(RunStatus, 20))
    status_message: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    admitted_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    last_heartbeat_at: Mapped[datetime | None] = mapped_column()
    # The agent that launched the run worker: whose host it runs on.
    agent_name: Mapped[str | None] = mapped_column(String(63))
    # A retry: the failed run it retries (unique: one retry per failure), the first run of
    # the chain, and which attempt it is (1 for a run nobody retried).
    parent_run_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    root_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The effective LogSettings its worker was launched with (null before the launch, and for
    # runs launched before they existed: forward everything), and where the agent stored its
    # output when the settings keep it in the user's environment with a store URL.
    log_settings: Mapped[dict[str, Any] | None] = mapped_column()
    log_url: Mapped[str | None] = mapped_column(Text)
    # The create request's idempotency key (never copied onto a retry).
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # The Temporal workflow that started it through the Nexus service (a retry copies it).
    caller_namespace: Mapped[str | None] = mapped_column(String(255))
    caller_workflow_id: Mapped[str | None] = mapped_column(String(1000))
    caller_run_id: Mapped[str | None] = mapped_column(String(255))
    caller_workflow_type: Mapped[str | None] = mapped_column(String(1000))
    caller_endpoint: Mapped[str | None] = mapped_column(String(255))


class RunTagRow(Base):
    __tablename__ = "run_tags"
    # With run_pk last, the runs with a tag are read newest first from the index alone: a
    # page of a tag shared by a fifth of a million runs reads a page of entries, not all.
    __table_args__ = (Index("ix_run_tags_key_value_run", "key", "value", "run_pk"),)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))


class RunEventRow(Base):
    __tablename__ = "run_events"
    __table_args__ = (
        UniqueConstraint("run_pk", "seq", name="uq_run_events_run_seq"),
        # A run's step events without reading its log lines (its steps, polled by the UI).
        Index("ix_run_events_run_type", "run_pk", "type"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[EventType] = mapped_column(EnumString(EventType, 40))
    timestamp: Mapped[datetime] = mapped_column()
    step: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[str | None] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column()


class RequestRow(Base):
    __tablename__ = "agent_requests"
    __table_args__ = (
        Index("ix_agent_requests_claim", "deployment_id", "status", "id"),
        # The retention pass deletes finished requests by age: without it, a scan of all the
        # requests of the retention window (days of launches) on every monitor pass.
        Index("ix_agent_requests_finished_at", "finished_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    type: Mapped[RequestType] = mapped_column(EnumString(RequestType, 40))
    payload: Mapped[dict[str, Any]] = mapped_column()
    # Same key = same intent; an unclaimed request with the key absorbs a new one.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[RequestStatus] = mapped_column(EnumString(RequestStatus, 20))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(63))
    # The agent queue it is routed to: only agents serving it claim it.
    queue: Mapped[str] = mapped_column(
        String(63), default=DEFAULT_AGENT_QUEUE, server_default=DEFAULT_AGENT_QUEUE
    )
    finished_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class AgentRow(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("deployment_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(100), default="")
    launcher: Mapped[str] = mapped_column(String(100), default="")
    code_locations: Mapped[list[Any]] = mapped_column()
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    queues: Mapped[list[Any]] = mapped_column(
        default=lambda: [DEFAULT_AGENT_QUEUE],
        server_default=text(f"'[\"{DEFAULT_AGENT_QUEUE}\"]'"),
    )
    last_heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduleRow(Base):
    """A schedule as its code location last declared it, and its state here: whether someone
    turned it on or off (``status``; None: the code's ``default_status``) and how far its
    ticks have been evaluated (``cursor``). Kept across redeploys, keyed by location and name."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("deployment_id", "code_location", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    code_location: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(100))
    job: Mapped[str] = mapped_column(String(63))
    run_config: Mapped[dict[str, Any]] = mapped_column()
    tags: Mapped[dict[str, Any]] = mapped_column()
    default_status: Mapped[AutomationStatus] = mapped_column(EnumString(AutomationStatus, 20))
    missed_ticks: Mapped[MissedTicks] = mapped_column(EnumString(MissedTicks, 20))
    # False once the location's code no longer declares it (or the location was removed).
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[AutomationStatus | None] = mapped_column(EnumString(AutomationStatus, 20))
    cursor: Mapped[datetime | None] = mapped_column()
    # Why it cannot be evaluated here (time zone, cron that never fires): it does not tick.
    error: Mapped[str | None] = mapped_column(Text)
    # The run config is a function the code server evaluates at each tick.
    config_from_code: Mapped[bool] = mapped_column(Boolean, default=False)
    timeout_seconds: Mapped[float] = mapped_column(default=60.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduleTickRow(Base):
    """One tick of a schedule, with its outcome. (schedule, tick time) is unique: however
    many schedulers evaluate it, a tick creates one run."""

    __tablename__ = "schedule_ticks"
    __table_args__ = (
        UniqueConstraint("schedule_id", "tick_time", name="uq_schedule_ticks_time"),
        Index("ix_schedule_ticks_schedule_id", "schedule_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id"))
    tick_time: Mapped[datetime] = mapped_column()
    status: Mapped[TickStatus] = mapped_column(EnumString(TickStatus, 20))
    run_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Ticks whose config the code server computes: EVALUATING until its answer, which is
    # ignored after ``deadline`` (the tick has failed by then).
    traceback: Mapped[str | None] = mapped_column(Text)
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    deadline: Mapped[datetime | None] = mapped_column()


class SensorRow(Base):
    """A sensor as its code location last declared it, and its state here: a user's on/off
    choice (``status``), its cursor, and when its last evaluation was due."""

    __tablename__ = "sensors"
    __table_args__ = (UniqueConstraint("deployment_id", "code_location", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    code_location: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[SensorKind] = mapped_column(EnumString(SensorKind, 20))
    job: Mapped[str | None] = mapped_column(String(63))
    description: Mapped[str | None] = mapped_column(Text)
    minimum_interval_seconds: Mapped[float] = mapped_column()
    timeout_seconds: Mapped[float] = mapped_column()
    monitored_jobs: Mapped[list[Any] | None] = mapped_column()
    monitored_status: Mapped[RunStatus | None] = mapped_column(EnumString(RunStatus, 20))
    default_status: Mapped[AutomationStatus] = mapped_column(EnumString(AutomationStatus, 20))
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[AutomationStatus | None] = mapped_column(EnumString(AutomationStatus, 20))
    # A standard sensor's cursor is its own (any string); a run-status sensor's is kept here:
    # "<ended_at ISO>|<run pk>" of the last run it was told about.
    cursor: Mapped[str | None] = mapped_column(Text)
    last_tick_at: Mapped[datetime | None] = mapped_column()
    # The last successful tick's time (what the next evaluation sees as last_tick_at).
    last_success_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SensorTickRow(Base):
    """One evaluation of a sensor: EVALUATING until the agent reports the code server's
    answer (or its deadline passes), then its outcome."""

    __tablename__ = "sensor_ticks"
    __table_args__ = (Index("ix_sensor_ticks_sensor_id", "sensor_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id"))
    tick_time: Mapped[datetime] = mapped_column()
    status: Mapped[TickStatus] = mapped_column(EnumString(TickStatus, 20))
    deadline: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # Run-status sensors: where the cursor moves when this tick succeeds.
    next_cursor: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[str | None] = mapped_column(Text)
    run_ids: Mapped[list[Any]] = mapped_column(default=list)
    run_keys_skipped: Mapped[list[Any]] = mapped_column(default=list)
    skip_reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    workflow_id: Mapped[str | None] = mapped_column(String(255))


class SensorRunKeyRow(Base):
    """A run key a sensor's request made a run for: unique per sensor, so however often it
    is asked for again (a retried report, a later tick), it makes no second run."""

    __tablename__ = "sensor_run_keys"
    __table_args__ = (UniqueConstraint("sensor_id", "run_key", name="uq_sensor_run_keys"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id"))
    run_key: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertPolicyRow(Base):
    __tablename__ = "alert_policies"
    __table_args__ = (UniqueConstraint("deployment_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    name: Mapped[str] = mapped_column(String(63))
    # The AlertPolicySpec as JSON, secrets included (never sent back).
    spec: Mapped[dict[str, Any]] = mapped_column()
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertRow(Base):
    """An alert a policy decided to send, and its delivery: an outbox row written in the
    transaction that saw the event, so a crash after the decision still delivers it."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("policy_id", "key", name="uq_alerts_policy_key"),
        Index("ix_alerts_due", "status", "next_attempt_at"),
        Index("ix_alerts_deployment", "deployment_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    policy_id: Mapped[int] = mapped_column(ForeignKey("alert_policies.id"))
    event: Mapped[AlertEvent] = mapped_column(EnumString(AlertEvent, 40))
    key: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[DeliveryStatus] = mapped_column(EnumString(DeliveryStatus, 20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()


class AuditRow(Base):
    """One action someone took, written in the action's own transaction. Append-only: the
    migration adds triggers that refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_org_id", "organization_id", "id"),
        Index("ix_audit_log_org_action", "organization_id", "action", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The token that acted, and its name and kind then (kept should it be renamed).
    actor_token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    actor_name: Mapped[str] = mapped_column(String(100))
    actor_kind: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(40))
    deployment: Mapped[str | None] = mapped_column(String(63))
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column()


# Tables kept in their own modules, imported here so that ``Base.metadata`` (Alembic's
# target, ``create_all``) holds them whoever imports this module first.
from tether_controlplane import tables_assets, tables_backfills, tables_retention  # noqa: E402, F401
