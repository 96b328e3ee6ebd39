"""User, agent and Nexus tokens as people manage them: list, create, revoke.

Sessions, sign-in links and run tokens are the control plane's own and never listed here;
revoking a user token still ends its sessions and links (they check their parent)."""

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tether_api.audit import AuditAction
from tether_api.tokens import ManagedTokenKind, Token, TokenCreate, TokenScopeKind, TokenSecret
from tether_controlplane.errors import Invalid, NotFound
from tether_controlplane.services import audit, tenancy
from tether_controlplane.services.tenancy import Principal
from tether_controlplane.tables import DeploymentRow, TokenRow, utcnow
from tether_controlplane.token_secrets import TokenKind

MANAGED = [TokenKind(k) for k in ManagedTokenKind]


def list_all(session: Session, organization_id: int) -> list[Token]:
    rows = session.scalars(
        select(TokenRow)
        .where(TokenRow.organization_id == organization_id, TokenRow.kind.in_(MANAGED))
        .order_by(TokenRow.id)
    )
    names = _deployment_names(session, organization_id)
    return [to_model(r, names) for r in rows]


def create(session: Session, principal: Principal, body: TokenCreate) -> TokenSecret:
    """Mint the token and audit it, in the caller's transaction."""
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise Invalid("expires_at is in the past: give a future time", loc=("body", "expires_at"))
    dep = None
    if body.deployment is not None:
        dep = tenancy.find_deployment(session, principal.organization_id, body.deployment)
    secret, row = tenancy.mint(
        session,
        TokenKind(body.kind),
        principal.organization_id,
        dep.id if dep else None,
        expires_at=body.expires_at,
        name=body.name,
        description=body.name,
    )
    info = to_model(row, {dep.id: dep.name} if dep else {})
    audit.record(
        session, principal, AuditAction.TOKEN_CREATE, _target(info), _created(info), deployment=dep
    )
    return TokenSecret(token=secret, info=info)


def record_minted_by_system(
    session: Session, actor_name: str, row: TokenRow, dep: DeploymentRow | None = None
) -> None:
    """Audit a user or agent token the control plane minted itself (``actor_name``, e.g.
    'bootstrap'), with no token acting, in the caller's transaction."""
    info = to_model(row, {dep.id: dep.name} if dep else {})
    audit.record_system(
        session,
        row.organization_id,
        actor_name,
        AuditAction.TOKEN_CREATE,
        _target(info),
        _created(info),
        deployment=dep,
    )


def _created(info: Token) -> dict[str, object]:
    return {
        "token_id": info.id,
        "kind": info.kind.value,
        "scope": info.scope.value,
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
    }


def revoke(session: Session, principal: Principal, token_id: int) -> Token:
    """Revoke a user or agent token of the caller's organization (idempotent: revoking a
    revoked one changes nothing and audits nothing)."""
    row = session.scalar(
        select(TokenRow).where(
            TokenRow.id == token_id,
            TokenRow.organization_id == principal.organization_id,
            TokenRow.kind.in_(MANAGED),
        )
    )
    if row is None:
        raise NotFound(f"token {token_id} not found in your organization; see `tether tokens list`")
    names = _deployment_names(session, principal.organization_id)
    if row.revoked_at is not None:
        return to_model(row, names)
    # One conditional UPDATE: of two racing revocations, one records the time.
    session.execute(
        update(TokenRow)
        .where(TokenRow.id == row.id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.refresh(row)
    info = to_model(row, names)
    dep = session.get(DeploymentRow, row.deployment_id) if row.deployment_id else None
    audit.record(
        session,
        principal,
        AuditAction.TOKEN_REVOKE,
        _target(info),
        {"token_id": info.id, "kind": info.kind.value, "scope": info.scope.value},
        deployment=dep,
    )
    return info


def to_model(row: TokenRow, deployment_names: dict[int, str]) -> Token:
    now = utcnow()
    return Token(
        id=row.id,
        name=row.name,
        kind=ManagedTokenKind(row.kind),
        scope=TokenScopeKind.DEPLOYMENT if row.deployment_id else TokenScopeKind.ORGANIZATION,
        deployment=deployment_names.get(row.deployment_id) if row.deployment_id else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        active=row.revoked_at is None and (row.expires_at is None or row.expires_at > now),
    )


def _target(info: Token) -> str:
    return f"{info.kind.value} token {info.name!r} (id {info.id})"


def _deployment_names(session: Session, organization_id: int) -> dict[int, str]:
    rows = session.execute(
        select(DeploymentRow.id, DeploymentRow.name).where(
            DeploymentRow.organization_id == organization_id
        )
    )
    return {dep_id: name for dep_id, name in rows}
