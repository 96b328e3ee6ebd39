"""User API: the organization's user, agent and Nexus tokens (list, create, revoke)."""

from typing import Annotated

from fastapi import APIRouter, Path

from tether_api.tokens import Token, TokenCreate, TokenSecret
from tether_controlplane.api.deps import DbDep, UserPrincipal, UserTokenOnly
from tether_controlplane.api.responses import LOOKUP, error_responses
from tether_controlplane.services import tokens

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

TokenIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="The token's id.")]


@router.get("")
def list_tokens(p: UserPrincipal, db: DbDep) -> list[Token]:
    """The organization's user, agent and Nexus tokens, oldest first, revoked and expired ones
    included. Secrets are never shown: they are stored only as hashes."""
    with db.read() as s:
        return tokens.list_all(s, p.organization_id)


@router.post("", status_code=201, responses=LOOKUP)
def create_token(body: TokenCreate, p: UserTokenOnly, db: DbDep) -> TokenSecret:
    """Create a user token, an agent token for one deployment or (scope 'organization')
    all of them, or a Nexus token for one deployment (an agent's Nexus service: it creates
    and reads runs there and terminates the runs it started). The secret is in this answer
    only. Needs a user token: a web session
    cannot make a credential that outlives it."""
    with db.write() as s:
        return tokens.create(s, p, body)


@router.post("/{token_id}/revoke", responses=error_responses(404, 422))
def revoke_token(token_id: TokenIdPath, p: UserTokenOnly, db: DbDep) -> Token:
    """Revoke a user, agent or Nexus token: it stops working at once (a user token's web
    sessions end with it). Revoking a revoked token changes nothing."""
    with db.write() as s:
        return tokens.revoke(s, p, token_id)
