"""Token minting and hashing. Tokens are random, shown once, and stored only as SHA-256.

SHA-256 (not a slow password hash) is right here: the secrets are 256 random bits, so there
is nothing to brute-force, and every API call must verify one quickly.
"""

import hashlib
import secrets
from enum import StrEnum


class TokenKind(StrEnum):
    USER = "user"
    AGENT = "agent"
    RUN = "run"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(kind: TokenKind) -> tuple[str, str]:
    """Return ``(secret, hash)``. The prefix tells a person which kind a leaked token is."""
    secret = f"tether_{kind.value}_{secrets.token_urlsafe(32)}"
    return secret, hash_token(secret)
