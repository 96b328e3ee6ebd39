"""Web UI sign-in through the API: a user token or a one-time link becomes a session."""

from datetime import timedelta

from fastapi import APIRouter, Response

from tether_api.sessions import SessionCreated, SignInLink, SignInLinkCreate
from tether_controlplane.api.deps import (
    DbDep,
    SessionStarter,
    SettingsDep,
    UserTokenOnly,
    WebSession,
)
from tether_controlplane.api.responses import error_responses
from tether_controlplane.services import sessions
from tether_controlplane.token_secrets import csrf_token

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions", status_code=201, responses=error_responses(422))
def start_session(p: SessionStarter, db: DbDep, settings: SettingsDep) -> SessionCreated:
    """Sign in: send a user token, or a sign-in link's code (used up by this call), as the
    bearer token. The session has the user token's rights until it expires or is ended."""
    lifetime = timedelta(hours=settings.session_lifetime_hours)
    with db.write() as s:
        secret, expires = sessions.start(s, p, lifetime)
        return SessionCreated(
            token=secret,
            csrf_token=csrf_token(secret),
            organization=sessions.organization_name(s, p),
            expires_at=expires,
        )


@router.delete("/sessions/current", status_code=204)
def end_session(p: WebSession, db: DbDep) -> Response:
    """Sign out: the session's token stops working at once."""
    with db.write() as s:
        sessions.end(s, p)
    return Response(status_code=204)


@router.post("/sign-in-links", status_code=201, responses=error_responses(422))
def create_sign_in_link(body: SignInLinkCreate, p: UserTokenOnly, db: DbDep) -> SignInLink:
    """A link that signs its first visitor in to the web UI as this user, once, before it
    expires (``tether dev`` prints one). Needs the user token itself, not a session."""
    with db.write() as s:
        code, expires = sessions.create_link(s, p, timedelta(seconds=body.ttl_seconds))
    return SignInLink(path=f"/sign-in/link?code={code}", expires_at=expires)
