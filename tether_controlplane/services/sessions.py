"""Web UI sessions and one-time sign-in links, stored as tokens with an expiry and a parent.

A session's parent is the user token it came from (through a link, the link's parent), so
revoking that user token ends its sessions and unused links at once."""

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from tether_api.models import TokenRefusalReason
from tether_controlplane.errors import ApiError
from tether_controlplane.services import tenancy
from tether_controlplane.services.tenancy import Principal
from tether_controlplane.tables import Organization, TokenRow, utcnow
from tether_controlplane.tokens import TokenKind


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
    secret = tenancy.mint(
        session,
        TokenKind.SESSION,
        principal.organization_id,
        description="web UI session",
        expires_at=expires,
        parent_id=user_token_id(session, principal),
    )[0]
    return secret, expires


def create_link(session: Session, principal: Principal, ttl: timedelta) -> tuple[str, datetime]:
    expires = utcnow() + ttl
    code = tenancy.mint(
        session,
        TokenKind.SIGN_IN,
        principal.organization_id,
        description="sign-in link",
        expires_at=expires,
        parent_id=user_token_id(session, principal),
    )[0]
    return code, expires


def end(session: Session, principal: Principal) -> None:
    session.execute(
        update(TokenRow)
        .where(TokenRow.id == principal.token_id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def organization_name(session: Session, principal: Principal) -> str:
    org = session.get(Organization, principal.organization_id)
    return org.name if org else ""
