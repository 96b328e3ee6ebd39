"""Token minting and hashing. Tokens are random, shown once, and stored only as SHA-256.

SHA-256 (not a slow password hash) is right here: the secrets are 256 random bits, so there
is nothing to brute-force, and every API call must verify one quickly.
"""

import hashlib
import hmac
import secrets
from enum import StrEnum


class TokenKind(StrEnum):
    USER = "user"
    AGENT = "agent"
    RUN = "run"
    # A web UI sign-in: made from a user token (or a sign-in link), with the user's rights,
    # an expiry, and revoked with its user token. Only ever held in an HttpOnly cookie.
    SESSION = "session"
    # A one-time sign-in link's code: good for exactly one session, then revoked.
    SIGN_IN = "signin"
    # The agent's Nexus service (``tether.v1.Runs``): for one deployment, it creates and
    # reads runs there and terminates the ones it started; nothing else.
    NEXUS = "nexus"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(kind: TokenKind) -> tuple[str, str]:
    """Return ``(secret, hash)``. The prefix tells a person which kind a leaked token is."""
    secret = f"tether_{kind.value}_{secrets.token_urlsafe(32)}"
    return secret, hash_token(secret)


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a web UI session: derived from the session's secret, so it needs no
    storage, and a page on another site, which cannot read the HttpOnly cookie, cannot know it."""
    return hmac.new(session_secret.encode(), b"tether-csrf", hashlib.sha256).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
