"""Organizations, deployments and tokens."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tether_api.retention import RetentionSettings
from tether_api.tokens import DEPLOYMENT_HEADER
from tether_api.user_api import Deployment
from tether_api.wire import TokenRefusalReason
from tether_controlplane.errors import NotFound
from tether_controlplane.services import logs
from tether_controlplane.tables import DeploymentRow, Organization, TokenRow, utcnow
from tether_controlplane.token_secrets import TokenKind, hash_token, new_token


@dataclass(frozen=True)
class Principal:
    """Who a request is from, as its token says."""

    kind: TokenKind
    token_id: int
    organization_id: int
    deployment_id: int | None
    run_id: str | None


@dataclass(frozen=True)
class Refusal:
    """Why a request's token is refused: the HTTP status, a detail naming the fix, and for a
    401 the machine-readable reason (``ErrorResponse.reason``)."""

    status: int
    detail: str
    reason: TokenRefusalReason | None = None


INVALID_TOKEN = (
    "invalid token: check the token you were given, or create a new one: "
    "`tether tokens create NAME` for a user, `tether tokens create NAME --kind agent` for an "
    "agent (and restart the agent with it)"
)
UNKNOWN = Refusal(401, INVALID_TOKEN, TokenRefusalReason.TOKEN_UNKNOWN)

# What the holder of a revoked or expired token of each kind should do about it.
FIXES: dict[TokenKind, str] = {
    TokenKind.USER: "create a new one with `tether tokens create NAME`",
    TokenKind.AGENT: "create a new one with `tether tokens create NAME --kind agent` "
    "and restart the agent with it",
    TokenKind.SESSION: "sign in again (the web UI)",
    TokenKind.SIGN_IN: "ask for a new sign-in link",
    TokenKind.RUN: "nothing to do: the agent mints a new one for each run",
    TokenKind.NEXUS: "create a new one with `tether tokens create NAME --kind nexus "
    "--deployment DEP` and restart the agent with it (TETHER_NEXUS_TOKEN)",
}


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal of a working token, else None (for callers that need no reason)."""
    found = identify(session, secret)
    return found if isinstance(found, Principal) else None


def identify(
    session: Session, secret: str, deployment_name: str | None = None
) -> Principal | Refusal:
    """Who ``secret`` is, or why it is refused.

    Only the full, correct secret of a revoked or expired token learns that (and when): its
    hash is what finds the row, so any other string gets the same generic answer as one
    that never existed, after the same single indexed lookup.

    ``deployment_name`` (the agent's X-Tether-Deployment header) picks the deployment of an
    organization-wide agent token; a deployment token may send it only with its own."""
    row = session.scalar(select(TokenRow).where(TokenRow.token_hash == hash_token(secret)))
    if row is None:
        return UNKNOWN
    fix = FIXES.get(row.kind, FIXES[TokenKind.USER])
    refused = _why_not(row, "this token", fix)
    if refused is None and row.parent_id is not None:
        parent = session.get(TokenRow, row.parent_id)  # a session ends with its user token
        refused = (
            UNKNOWN
            if parent is None
            else _why_not(parent, f"the {parent.kind} token this one came from", fix)
        )
    if refused is not None:
        return refused
    deployment_id = row.deployment_id
    if row.kind == TokenKind.AGENT:
        chosen = _agent_deployment(session, row, deployment_name)
        if isinstance(chosen, Refusal):
            return chosen
        deployment_id = chosen
    return Principal(
        kind=row.kind,
        token_id=row.id,
        organization_id=row.organization_id,
        deployment_id=deployment_id,
        run_id=row.run_id,
    )


def _why_not(row: TokenRow, what: str, fix: str) -> Refusal | None:
    """Why ``row`` no longer works, if it does not; ``fix``: what its holder should do."""
    if row.revoked_at is not None:
        return Refusal(
            401,
            f"{what} ({row.name!r}) was revoked on {_when(row.revoked_at)}; {fix}",
            TokenRefusalReason.TOKEN_REVOKED,
        )
    if row.expires_at is not None and row.expires_at <= utcnow():
        return Refusal(
            401,
            f"{what} ({row.name!r}) expired on {_when(row.expires_at)}; {fix}",
            TokenRefusalReason.TOKEN_EXPIRED,
        )
    return None


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _agent_deployment(session: Session, row: TokenRow, name: str | None) -> int | Refusal:
    """The deployment an agent token acts on in this request."""
    if row.deployment_id is not None:
        if name:
            own = session.get(DeploymentRow, row.deployment_id)
            if own is not None and own.name != name:
                return Refusal(
                    403,
                    f"this agent token serves deployment {own.name!r}, and the request names "
                    f"{name!r} ({DEPLOYMENT_HEADER}); run the agent with --deployment "
                    f"{own.name}, or with a token of {name!r} or an organization-wide one",
                )
        return row.deployment_id
    if not name:
        return Refusal(
            400,
            "this agent token serves every deployment of its organization: name the one "
            f"this agent serves with the {DEPLOYMENT_HEADER} header (`tether agent run "
            "--deployment NAME` or TETHER_DEPLOYMENT)",
        )
    dep = session.scalar(
        select(DeploymentRow).where(
            DeploymentRow.organization_id == row.organization_id, DeploymentRow.name == name
        )
    )
    if dep is None:
        return Refusal(
            404,
            f"deployment {name!r} ({DEPLOYMENT_HEADER}) not found in this token's organization; "
            "check --deployment, or create it with POST /api/v1/deployments/{name}",
        )
    return dep.id


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
        raise deployment_not_found(name)
    return dep


def deployment_not_found(name: str) -> NotFound:
    """The one answer for a deployment a token cannot see, whether it exists or not."""
    return NotFound(
        f"deployment {name!r} not found in your organization; "
        "list them with GET /api/v1/deployments"
    )


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
        log_settings=logs.deployment_settings(dep),
        retention=RetentionSettings.model_validate(dep.retention or {}),
    )


def mint(
    session: Session,
    kind: TokenKind,
    organization_id: int,
    deployment_id: int | None = None,
    run_id: str | None = None,
    description: str = "",
    expires_at: datetime | None = None,
    parent_id: int | None = None,
    name: str = "",
) -> tuple[str, TokenRow]:
    """A new token: its secret (shown once) and its row (flushed, so it has an id)."""
    secret, digest = new_token(kind)
    row = TokenRow(
        kind=kind,
        name=(name or description or kind.value)[:100],
        token_hash=digest,
        organization_id=organization_id,
        deployment_id=deployment_id,
        run_id=run_id,
        description=description,
        created_at=utcnow(),
        expires_at=expires_at,
        parent_id=parent_id,
    )
    session.add(row)
    session.flush()
    return secret, row


def revoke_run_tokens(session: Session, run_id: str) -> None:
    session.execute(
        update(TokenRow)
        .where(TokenRow.run_id == run_id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
