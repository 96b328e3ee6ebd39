"""User API: deployments, agent tokens and agents."""

from fastapi import APIRouter
from sqlalchemy import select

from tether_api.agent_api import Agent
from tether_api.audit import AuditAction
from tether_api.tokens import NewAgentToken
from tether_api.user_api import AgentTokenCreate, Deployment, DeploymentUpdate, TokenCreated
from tether_controlplane.api.deps import (
    DbDep,
    NamedScope,
    NamePath,
    SettingsDep,
    UserPrincipal,
    UserScope,
    UserTokenOnly,
)
from tether_controlplane.api.responses import LOOKUP, error_responses
from tether_controlplane.services import agents, audit, retention, runs, tenancy, tokens
from tether_controlplane.tables import DeploymentRow, Organization

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])


@router.get("")
def list_deployments(p: UserPrincipal, db: DbDep) -> list[Deployment]:
    with db.read() as s:
        rows = s.scalars(
            select(DeploymentRow)
            .where(DeploymentRow.organization_id == p.organization_id)
            .order_by(DeploymentRow.name)
        )
        return [tenancy.deployment_model(s, r) for r in rows]


@router.post("/{dep}", status_code=201, responses=error_responses(422))
def create_deployment(
    dep: NamePath, p: UserPrincipal, db: DbDep, settings: SettingsDep
) -> Deployment:
    """Create a deployment (idempotent: an existing one is returned as it is)."""
    with db.write() as s:
        org = s.get(Organization, p.organization_id)
        assert org is not None
        row, created = tenancy.get_or_create_deployment(
            s, org, dep, settings.default_run_concurrency_limit
        )
        if created:
            details = {"run_concurrency_limit": row.run_concurrency_limit}
            audit.record(s, p, AuditAction.DEPLOYMENT_CREATE, dep, details, deployment=row)
        return tenancy.deployment_model(s, row)


@router.get("/{dep}", responses=LOOKUP)
def get_deployment(scope: UserScope, db: DbDep) -> Deployment:
    with db.read() as s:
        return tenancy.deployment_model(s, scope.deployment(s))


@router.patch("/{dep}", responses=LOOKUP)
def update_deployment(body: DeploymentUpdate, scope: UserScope, db: DbDep) -> Deployment:
    with db.write() as s:
        row = scope.deployment(s)
        if body.run_concurrency_limit is not None:
            before = row.run_concurrency_limit
            row.run_concurrency_limit = body.run_concurrency_limit
            runs.admit(s, row)
            details = {"run_concurrency_limit": {"from": before, "to": row.run_concurrency_limit}}
            audit.record(
                s, scope.principal, AuditAction.DEPLOYMENT_UPDATE, row.name, details, deployment=row
            )
        if body.log_settings is not None:
            old_settings = row.log_settings
            row.log_settings = body.log_settings.model_dump(mode="json")
            audit.record(
                s,
                scope.principal,
                AuditAction.DEPLOYMENT_UPDATE,
                row.name,
                {"log_settings": {"from": old_settings, "to": row.log_settings}},
                deployment=row,
            )
        if body.retention is not None:
            old_retention = retention.deployment_rule(row).model_dump(mode="json")
            row.retention = body.retention.model_dump(mode="json")
            audit.record(
                s,
                scope.principal,
                AuditAction.DEPLOYMENT_UPDATE,
                row.name,
                {"retention": {"from": old_retention, "to": row.retention}},
                deployment=row,
            )
        return tenancy.deployment_model(s, row)


@router.post("/{dep}/agent-tokens", status_code=201, responses=LOOKUP)
def create_agent_token(
    body: AgentTokenCreate, dep: NamePath, p: UserTokenOnly, db: DbDep
) -> TokenCreated:
    """Mint an agent token for the deployment, named by its description: the same as
    `POST /api/v1/tokens` with kind 'agent'. Needs a user token: a web session cannot make
    a credential that outlives it."""
    scope = NamedScope(p, dep)
    with db.write() as s:
        row = scope.deployment(s)
        name = body.description.strip()[:100] or f"agent token of {row.name}"
        wanted = NewAgentToken(name=name, kind="agent", deployment=row.name)
        created = tokens.create(s, p, wanted)
        return TokenCreated(token=created.token, kind=created.info.kind.value, deployment=row.name)


@router.get("/{dep}/agents", responses=LOOKUP)
def list_agents(scope: UserScope, db: DbDep, settings: SettingsDep) -> list[Agent]:
    with db.read() as s:
        return agents.list_all(s, scope.deployment(s), settings.agent_heartbeat_timeout_seconds)
