"""Web UI sessions and one-time sign-in links, stored as tokens with an expiry and a parent.

A session's parent is the user token it came from (through a link, the link's parent), so
revoking that user token ends its sessions and unused links at once.

Each is a credential that signs someone in as the user: making a link, starting a session and
ending one are audited (``sign_in_link.create``, ``session.start``, ``session.end``) in the
same transaction."""

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from tether_api.audit import AuditAction
from tether_api.wire import TokenRefusalReason
from tether_controlplane.errors import ApiError
from tether_controlplane.services import audit, tenancy
from tether_controlplane.services.tenancy import Principal
from tether_controlplane.tables import Organization, TokenRow, utcnow
from tether_controlplane.token_secrets import TokenKind


class LinkUsed(ApiError):
    status_code = 401
    reason = TokenRefusalReason.TOKEN_REVOKED  # a used link is revoked


def user_token_id(session: Session, principal: Principal) -> int:
    """The user token behind a user, session or sign-in principal."""
    if principal.kind == TokenKind.USER:
        return principal.token_id
    row = session.get(TokenRow, principal.token_id)
    assert row is not None and row.parent_id is not None, "sessions and links have a parent"
    return row.parent_id


def start(session: Session, principal: Principal, lifetime: timedelta) -> tuple[str, datetime]:
    """A new session for a user token, or for a sign-in link, which this uses up."""
    if principal.kind == TokenKind.SIGN_IN:
        # One UPDATE decides which of two racing redemptions wins.
        used = session.execute(
            update(TokenRow)
            .where(TokenRow.id == principal.token_id, TokenRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise LinkUsed("this sign-in link was already used: ask for a new one")
    expires = utcnow() + lifetime
    secret, row = tenancy.mint(
        session,
        TokenKind.SESSION,
        principal.organization_id,
        description="web UI session",
        expires_at=expires,
        parent_id=user_token_id(session, principal),
    )
    via = "sign_in_link" if principal.kind == TokenKind.SIGN_IN else "user_token"
    audit.record(
        session,
        principal,
        AuditAction.SESSION_START,
        f"session (id {row.id})",
        {"token_id": row.id, "via": via, "expires_at": expires.isoformat()},
    )
    return secret, expires


def create_link(session: Session, principal: Principal, ttl: timedelta) -> tuple[str, datetime]:
    expires = utcnow() + ttl
    code, row = tenancy.mint(
        session,
        TokenKind.SIGN_IN,
        principal.organization_id,
        description="sign-in link",
        expires_at=expires,
        parent_id=user_token_id(session, principal),
    )
    audit.record(
        session,
        principal,
        AuditAction.SIGN_IN_LINK_CREATE,
        f"sign-in link (id {row.id})",
        {"token_id": row.id, "expires_at": expires.isoformat()},
    )
    return code, expires


def end(session: Session, principal: Principal) -> None:
    ended = session.execute(
        update(TokenRow)
        .where(TokenRow.id == principal.token_id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if ended.rowcount == 1:  # type: ignore[attr-defined]  # else a racing sign-out did it
        audit.record(
            session,
            principal,
            AuditAction.SESSION_END,
            f"session (id {principal.token_id})",
            {"token_id": principal.token_id},
        )


def organization_name(session: Session, principal: Principal) -> str:
    org = session.get(Organization, principal.organization_id)
    return org.name if org else ""
