"""Organizations, deployments and tokens."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tether_api.logs import LogSettings
from tether_api.models import Deployment
from tether_controlplane.errors import NotFound
from tether_controlplane.tables import DeploymentRow, Organization, TokenRow, utcnow
from tether_controlplane.tokens import TokenKind, hash_token, new_token


@dataclass(frozen=True)
class Principal:
    """Who a request is from, as its token says."""

    kind: TokenKind
    token_id: int
    organization_id: int
    deployment_id: int | None
    run_id: str | None


def authenticate(session: Session, secret: str) -> Principal | None:
    row = session.scalar(select(TokenRow).where(TokenRow.token_hash == hash_token(secret)))
    if row is None or not _valid(row):
        return None
    if row.parent_id is not None:
        parent = session.get(TokenRow, row.parent_id)
        if parent is None or not _valid(parent):  # a session ends with its user token
            return None
    return Principal(
        kind=TokenKind(row.kind),
        token_id=row.id,
        organization_id=row.organization_id,
        deployment_id=row.deployment_id,
        run_id=row.run_id,
    )


def _valid(row: TokenRow) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > utcnow())


def get_or_create_org(session: Session, name: str) -> tuple[Organization, bool]:
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is not None:
        return org, False
    org = Organization(name=name, created_at=utcnow())
    session.add(org)
    session.flush()
    return org, True


def get_or_create_deployment(
    session: Session, org: Organization, name: str, concurrency_limit: int
) -> tuple[DeploymentRow, bool]:
    dep = session.scalar(
        select(DeploymentRow).where(
            DeploymentRow.organization_id == org.id, DeploymentRow.name == name
        )
    )
    if dep is not None:
        return dep, False
    dep = DeploymentRow(
        organization_id=org.id,
        name=name,
        run_concurrency_limit=concurrency_limit,
        created_at=utcnow(),
    )
    session.add(dep)
    session.flush()
    return dep, True


def find_deployment(session: Session, organization_id: int, name: str) -> DeploymentRow:
    dep = session.scalar(
        select(DeploymentRow).where(
            DeploymentRow.organization_id == organization_id, DeploymentRow.name == name
        )
    )
    if dep is None:
        raise NotFound(
            f"deployment {name!r} not found in your organization; "
            "list them with GET /api/v1/deployments"
        )
    return dep


def deployment_by_id(session: Session, deployment_id: int) -> DeploymentRow:
    dep = session.get(DeploymentRow, deployment_id)
    if dep is None:  # a token outliving its deployment
        raise NotFound("this token's deployment no longer exists")
    return dep


def deployment_model(session: Session, dep: DeploymentRow) -> Deployment:
    org = session.get(Organization, dep.organization_id)
    return Deployment(
        name=dep.name,
        organization=org.name if org else "",
        run_concurrency_limit=dep.run_concurrency_limit,
        created_at=dep.created_at,
        log_settings=LogSettings.model_validate(dep.log_settings)
        if dep.log_settings
        else LogSettings(),
    )


def mint_token(
    session: Session,
    kind: TokenKind,
    organization_id: int,
    deployment_id: int | None = None,
    run_id: str | None = None,
    description: str = "",
    expires_at: datetime | None = None,
    parent_id: int | None = None,
) -> str:
    secret, digest = new_token(kind)
    session.add(
        TokenRow(
            kind=kind.value,
            token_hash=digest,
            organization_id=organization_id,
            deployment_id=deployment_id,
            run_id=run_id,
            description=description,
            created_at=utcnow(),
            expires_at=expires_at,
            parent_id=parent_id,
        )
    )
    session.flush()
    return secret


def revoke_run_tokens(session: Session, run_id: str) -> None:
    session.execute(
        update(TokenRow)
        .where(TokenRow.run_id == run_id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
