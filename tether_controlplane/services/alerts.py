"""Alert policies and the alerts they decide. Deciding writes an outbox row in the caller's
transaction (the one that saw the run fail, the location break ...); ``services/delivery.py``
sends it later, so a slow webhook never holds up run processing and a crash between deciding
and sending loses nothing. (policy, key) is unique: an alert fires once per thing it is about."""

import uuid
from datetime import datetime, timedelta
from typing import Any, assert_never

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether_api.alerts import (
    Alert,
    AlertEvent,
    AlertPolicy,
    AlertPolicySpec,
    DeliveryStatus,
    EmailChannel,
    WebhookChannel,
)
from tether_api.channels import MASK, SECRET_FIELDS, kind_of, masked_url
from tether_api.enums import RunStatus
from tether_controlplane.errors import Invalid, NotFound
from tether_controlplane.tables import (
    AgentRow,
    AlertPolicyRow,
    AlertRow,
    DeploymentRow,
    RunRow,
    utcnow,
)

# Every kind's write-only fields (tether_api.channels), for a stored channel read as a dict.
WRITE_ONLY = SECRET_FIELDS
# SMTP over implicit TLS (SMTPS); any other port speaks plain text until STARTTLS.
SMTPS_PORT = 465


def password_in_clear(channel: dict[str, Any]) -> bool:
    """Whether this e-mail channel would log in over a plain-text connection."""
    logs_in = bool(channel.get("username") or channel.get("password"))
    encrypted = channel.get("starttls", True) or channel.get("smtp_port") == SMTPS_PORT
    return logs_in and not encrypted


def new_id() -> str:
    return str(uuid.uuid4())


def put_policy(
    session: Session, dep: DeploymentRow, name: str, spec: AlertPolicySpec
) -> AlertPolicyRow:
    row = _policy(session, dep, name)
    stored = spec.model_dump(mode="json")
    channel = stored["channel"]
    model = spec.channel
    match model:
        case WebhookChannel():
            old_url = (row.spec.get("channel") or {}).get("url") if row is not None else None
            if MASK in channel["url"]:
                if not old_url or masked_url(old_url) != channel["url"]:
                    raise Invalid(
                        f"channel.url: {masked_url(channel['url'])} stands for a stored "
                        "webhook URL, and this policy has none with that host: send the URL "
                        "itself",
                        loc=("body", "channel", "url"),
                    )
                channel["url"] = old_url
        case EmailChannel():
            if password_in_clear(channel):
                raise Invalid(
                    "channel.starttls: false would send the SMTP username and password in "
                    f"clear; set starttls: true, or use smtp_port {SMTPS_PORT} (implicit TLS)",
                    loc=("body", "channel", "starttls"),
                )
        case _:
            assert_never(model)
    secrets = kind_of(model).secrets
    for key in secrets:
        kept = row is not None and (row.spec.get("channel") or {}).get(key)
        if stored["channel"].get(key) == MASK and not kept:
            raise Invalid(
                f"channel.{key}: {MASK} stands for a stored {key}, and this policy has none: "
                f"send the {key} itself",
                loc=("body", "channel", key),
            )
    if row is None:
        row = AlertPolicyRow(deployment_id=dep.id, name=name)
        session.add(row)
    else:
        # A secret left out of an update keeps its value: it is never sent back to be re-sent.
        for key in secrets:
            old = (row.spec.get("channel") or {}).get(key)
            sent = stored["channel"].get(key)
            if old and key in stored["channel"] and (sent is None or sent == MASK):
                stored["channel"][key] = old
    row.spec, row.enabled, row.updated_at = stored, spec.enabled, utcnow()
    session.flush()
    return row


def _policy(session: Session, dep: DeploymentRow, name: str) -> AlertPolicyRow | None:
    return session.scalar(
        select(AlertPolicyRow).where(
            AlertPolicyRow.deployment_id == dep.id, AlertPolicyRow.name == name
        )
    )


def find_policy(session: Session, dep: DeploymentRow, name: str) -> AlertPolicyRow:
    row = _policy(session, dep, name)
    if row is None or row.spec.get("deleted"):
        raise NotFound(
            f"alert policy {name!r} not found in deployment {dep.name!r}; "
            "list them with GET .../alert-policies (tether alerts list)"
        )
    return row


def delete_policy(session: Session, row: AlertPolicyRow) -> None:
    # Its alerts stay as history; the policy row stays for them, disabled and hidden.
    row.enabled = False
    channel = {k: v for k, v in (row.spec.get("channel") or {}).items() if k not in WRITE_ONLY}
    row.spec = {**row.spec, "channel": channel, "deleted": True}
    row.updated_at = utcnow()


def policies(session: Session, dep: DeploymentRow) -> list[AlertPolicyRow]:
    rows = session.scalars(
        select(AlertPolicyRow)
        .where(AlertPolicyRow.deployment_id == dep.id)
        .order_by(AlertPolicyRow.name)
    )
    return [r for r in rows if not r.spec.get("deleted")]


def spec_of(row: AlertPolicyRow) -> AlertPolicySpec:
    return AlertPolicySpec.model_validate({k: v for k, v in row.spec.items() if k != "deleted"})


def policy_model(dep: DeploymentRow, row: AlertPolicyRow) -> AlertPolicy:
    spec = spec_of(row)
    model = spec.channel
    hidden: dict[str, Any] = {k: MASK for k in kind_of(model).secrets if getattr(model, k)}
    match model:
        case WebhookChannel():
            hidden["url"] = masked_url(str(model.url))
        case EmailChannel():
            pass  # its recipients are shown: they are where it sends
        case _:
            assert_never(model)
    channel = type(model).model_validate({**model.model_dump(mode="json"), **hidden})
    return AlertPolicy(
        **spec.model_dump(exclude={"channel"}),
        channel=channel,
        name=row.name,
        deployment=dep.name,
        updated_at=row.updated_at,
    )


def alert_model(session: Session, row: AlertRow) -> Alert:
    policy = session.get(AlertPolicyRow, row.policy_id)
    return Alert(
        id=row.public_id,
        policy=policy.name if policy else "",
        event=row.event,
        key=row.key,
        summary=row.summary,
        details=row.details,
        created_at=row.created_at,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


def recent(session: Session, dep: DeploymentRow, limit: int) -> list[Alert]:
    rows = session.scalars(
        select(AlertRow)
        .where(AlertRow.deployment_id == dep.id)
        .order_by(AlertRow.id.desc())
        .limit(limit)
    )
    return [alert_model(session, r) for r in rows]


# --- deciding ---------------------------------------------------------------------------


def fire(
    session: Session,
    dep: DeploymentRow,
    event: AlertEvent,
    key: str,
    summary: str,
    details: dict[str, Any],
    *,
    location: str | None = None,
    run: RunRow | None = None,
    only: AlertPolicyRow | None = None,
) -> list[AlertRow]:
    """An alert for each enabled policy of the deployment that listens to ``event`` and
    whose filters match (``only``: that one policy, whatever it listens to); none for a
    (policy, key) that already fired."""
    fired = []
    key = key[:200]
    for row in [only] if only is not None else policies(session, dep):
        spec = spec_of(row)
        if only is None and not _wants(row, spec, event, location, run):
            continue
        exists = session.scalar(
            select(AlertRow.id).where(AlertRow.policy_id == row.id, AlertRow.key == key)
        )
        if exists is not None:
            continue
        alert = AlertRow(
            public_id=new_id(),
            deployment_id=dep.id,
            policy_id=row.id,
            event=event,
            key=key,
            summary=summary,
            details=details,
            created_at=utcnow(),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
        )
        try:
            with session.begin_nested():  # another replica may decide the same alert at once
                session.add(alert)
        except IntegrityError:
            continue
        fired.append(alert)
    return fired


def _wants(
    row: AlertPolicyRow,
    spec: AlertPolicySpec,
    event: AlertEvent,
    location: str | None,
    run: RunRow | None,
) -> bool:
    return row.enabled and event in spec.events and _matches(spec, location, run)


def _matches(spec: AlertPolicySpec, location: str | None, run: RunRow | None) -> bool:
    if spec.code_locations and location not in spec.code_locations:
        return False
    if run is not None:
        if spec.jobs and run.job not in spec.jobs:
            return False
        if any(run.tags.get(k) != v for k, v in spec.tags.items()):
            return False
    return True


def run_ended(session: Session, dep: DeploymentRow, run: RunRow) -> None:
    event = AlertEvent.RUN_FAILURE if run.status == RunStatus.FAILURE else AlertEvent.RUN_SUCCESS
    outcome = "failed" if event == AlertEvent.RUN_FAILURE else "succeeded"
    first = (run.status_message or "").strip().splitlines()
    summary = f"run {run.id[:8]} of job {run.job} in {run.code_location} {outcome}" + (
        f": {first[0]}" if first and event == AlertEvent.RUN_FAILURE else ""
    )
    fire(
        session,
        dep,
        event,
        f"run:{run.id}:{run.status}",
        summary,
        _run_details(run),
        location=run.code_location,
        run=run,
    )


def _run_details(run: RunRow) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "job": run.job,
        "code_location": run.code_location,
        "status": run.status,
        "status_message": run.status_message,
        "tags": run.tags,
        "attempt": run.attempt,
    }


def location_error(
    session: Session, dep: DeploymentRow, name: str, change_id: int, message: str
) -> None:
    """``change_id``: the outage's first status change into ERROR (the first since the
    location last ran or was removed), so each outage fires once however often its code
    server is restarted and fails again meanwhile."""
    first = message.strip().splitlines()[0] if message.strip() else "error"
    fire(
        session,
        dep,
        AlertEvent.LOCATION_ERROR,
        f"location:{name}:error:{change_id}",
        f"code location {name} is in ERROR: {first}",
        {"code_location": name, "message": message},
        location=name,
    )


def tick_failed(
    session: Session,
    dep: DeploymentRow,
    location: str,
    subject: str,
    key: str,
    tick: datetime,
    error: str,
) -> None:
    """``subject``: "schedule NAME" or "sensor NAME"; ``key``: what the alert is about."""
    name = subject.split(" ", 1)[-1]
    fire(
        session,
        dep,
        AlertEvent.TICK_FAILURE,
        key,
        f"{subject} ({location}): the tick of {tick:%Y-%m-%d %H:%M:%S} UTC failed: "
        + (error.strip().splitlines() or ["no details"])[0],
        {
            "code_location": location,
            subject.split(" ", 1)[0]: name,
            "tick": tick.isoformat(),
            "error": error,
        },
        location=location,
    )


def check_time_based(session: Session, now: datetime) -> None:
    """Long runs and unavailable agents: checked by the monitor, fired once each."""
    for row in session.scalars(select(AlertPolicyRow).where(AlertPolicyRow.enabled.is_(True))):
        if row.spec.get("deleted"):
            continue
        spec = spec_of(row)
        dep = session.get(DeploymentRow, row.deployment_id)
        assert dep is not None
        if AlertEvent.RUN_LONG in spec.events:
            cutoff = now - timedelta(minutes=spec.run_longer_than_minutes)
            for run in session.scalars(
                select(RunRow).where(
                    RunRow.deployment_id == dep.id,
                    RunRow.status == RunStatus.STARTED,
                    RunRow.started_at < cutoff,
                )
            ):
                if not _matches(spec, run.code_location, run):
                    continue
                # This policy's own threshold: fired for it alone.
                fire(
                    session,
                    dep,
                    AlertEvent.RUN_LONG,
                    f"run:{run.id}:long",
                    f"run {run.id[:8]} of job {run.job} in {run.code_location} has been running "
                    f"for more than {spec.run_longer_than_minutes:g} minutes",
                    _run_details(run),
                    only=row,
                )
        if AlertEvent.AGENT_UNAVAILABLE in spec.events:
            cutoff = now - timedelta(minutes=spec.agent_unavailable_minutes)
            for agent in session.scalars(
                select(AgentRow).where(
                    AgentRow.deployment_id == dep.id, AgentRow.last_heartbeat_at < cutoff
                )
            ):
                # Keyed by its last heartbeat: once per outage, again after it came back.
                fire(
                    session,
                    dep,
                    AlertEvent.AGENT_UNAVAILABLE,
                    f"agent:{agent.name}:{agent.last_heartbeat_at.isoformat()}",
                    f"agent {agent.name} has been unavailable for more than "
                    f"{spec.agent_unavailable_minutes:g} minutes (last heartbeat "
                    f"{agent.last_heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)",
                    {"agent": agent.name, "last_heartbeat_at": agent.last_heartbeat_at.isoformat()},
                    only=row,
                )
