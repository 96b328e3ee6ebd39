"""Agent heartbeats and availability."""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api.agent_api import Agent, AgentCodeLocationState, AgentHeartbeat
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_controlplane.tables import AgentRow, DeploymentRow, Organization, utcnow


def heartbeat(session: Session, dep: DeploymentRow, body: AgentHeartbeat) -> AgentRow:
    row = session.scalar(
        select(AgentRow).where(AgentRow.deployment_id == dep.id, AgentRow.name == body.agent_name)
    )
    now = utcnow()
    if row is None:
        row = AgentRow(deployment_id=dep.id, name=body.agent_name, created_at=now)
        session.add(row)
    row.version = body.version
    row.launcher = body.launcher
    row.code_locations = [c.model_dump(mode="json") for c in body.code_locations]
    row.metadata_ = body.metadata
    row.queues = list(dict.fromkeys(body.queues))
    row.last_heartbeat_at = now
    session.flush()
    return row


def to_model(session: Session, dep: DeploymentRow, row: AgentRow, timeout_seconds: float) -> Agent:
    org = session.get(Organization, dep.organization_id)
    return Agent(
        name=row.name,
        organization=org.name if org else "",
        deployment=dep.name,
        version=row.version,
        launcher=row.launcher,
        available=row.last_heartbeat_at >= utcnow() - timedelta(seconds=timeout_seconds),
        last_heartbeat_at=row.last_heartbeat_at,
        code_locations=[AgentCodeLocationState.model_validate(c) for c in row.code_locations],
        metadata=row.metadata_,
        queues=list(row.queues or [DEFAULT_AGENT_QUEUE]),
    )


def list_all(session: Session, dep: DeploymentRow, timeout_seconds: float) -> list[Agent]:
    rows = session.scalars(
        select(AgentRow).where(AgentRow.deployment_id == dep.id).order_by(AgentRow.name)
    )
    return [to_model(session, dep, r, timeout_seconds) for r in rows]


def live_rows(session: Session, dep: DeploymentRow, timeout_seconds: float) -> list[AgentRow]:
    """Agents heard from within the heartbeat timeout."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    return list(
        session.scalars(
            select(AgentRow).where(
                AgentRow.deployment_id == dep.id, AgentRow.last_heartbeat_at >= cutoff
            )
        )
    )


def queue_warning(
    session: Session,
    dep: DeploymentRow,
    queue: str,
    timeout_seconds: float,
    live: list[AgentRow] | None = None,
) -> str | None:
    """Why nothing will serve the agent queue ``queue``, or None when a live agent does.
    ``live``: the live agents, when the caller has them already."""
    if live is None:
        live = live_rows(session, dep, timeout_seconds)
    if any(queue in (row.queues or [DEFAULT_AGENT_QUEUE]) for row in live):
        return None
    served = sorted({q for row in live for q in (row.queues or [DEFAULT_AGENT_QUEUE])})
    others = f" (live agents serve: {', '.join(served)})" if served else " (no agent is live)"
    return (
        f"no live agent serves agent queue '{queue}'{others}: start one with "
        f"`tether agent run --queue {queue}`"
    )


def lost_agent(
    session: Session, dep: DeploymentRow, name: str | None, timeout_seconds: float, now: datetime
) -> AgentRow | None:
    """The agent named ``name`` if it is silent past the timeout (its host is lost)."""
    if name is None:
        return None
    row = session.scalar(
        select(AgentRow).where(AgentRow.deployment_id == dep.id, AgentRow.name == name)
    )
    if row is None or row.last_heartbeat_at >= now - timedelta(seconds=timeout_seconds):
        return None
    return row
