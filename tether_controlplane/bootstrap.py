"""``tether controlplane bootstrap``: create what is missing, mint a user and an agent token (and,
asked, a Nexus token for the agent's Nexus service)."""

from pydantic import BaseModel
from sqlalchemy.orm import Session

from tether_controlplane import migrate
from tether_controlplane.db import Database
from tether_controlplane.services import tenancy, tokens
from tether_controlplane.token_secrets import TokenKind

# The actor_name of the audit entries of the tokens bootstrap mints (no token acts).
AUDIT_ACTOR = "bootstrap"


class BootstrapResult(BaseModel):
    organization: str
    deployment: str
    created_organization: bool
    created_deployment: bool
    user_token: str
    agent_token: str
    # True when the token passed in as ``keep_*`` still worked and was returned as it is.
    user_token_reused: bool = False
    agent_token_reused: bool = False
    # Only when asked (``nexus=True``): the deployment's Nexus token, for the agent's service.
    nexus_token: str | None = None
    nexus_token_reused: bool = False


def bootstrap(
    database_url: str,
    org: str,
    deployment: str,
    concurrency: int,
    keep_user_token: str | None = None,
    keep_agent_token: str | None = None,
    nexus: bool = False,
    keep_nexus_token: str | None = None,
) -> BootstrapResult:
    """Create the organization and deployment if missing, and return a user and an agent token.

    A ``keep_*`` token that is still valid (known, not revoked, of its kind, for this
    organization, and for an agent token this deployment) is returned instead of minting a new
    one, so that a restarted container keeps the tokens it saved."""
    db = Database(database_url)
    try:
        migrate.upgrade(db.engine)
        with db.write() as s:
            org_row, new_org = tenancy.get_or_create_org(s, org)
            dep_row, new_dep = tenancy.get_or_create_deployment(s, org_row, deployment, concurrency)
            user = _still_valid(s, keep_user_token, TokenKind.USER, org_row.id, None)
            agent = _still_valid(s, keep_agent_token, TokenKind.AGENT, org_row.id, dep_row.id)
            user_reused, agent_reused = user is not None, agent is not None
            # A token minted here is audited like one made over the API, by the system.
            if user is None:
                user, row = tenancy.mint(s, TokenKind.USER, org_row.id, description="bootstrap")
                tokens.record_minted_by_system(s, AUDIT_ACTOR, row)
            if agent is None:
                agent, row = tenancy.mint(
                    s, TokenKind.AGENT, org_row.id, dep_row.id, description="bootstrap"
                )
                tokens.record_minted_by_system(s, AUDIT_ACTOR, row, dep_row)
            nexus_token = None
            nexus_reused = False
            if nexus:
                nexus_token = _still_valid(
                    s, keep_nexus_token, TokenKind.NEXUS, org_row.id, dep_row.id
                )
                nexus_reused = nexus_token is not None
                if nexus_token is None:
                    nexus_token, row = tenancy.mint(
                        s, TokenKind.NEXUS, org_row.id, dep_row.id, description="bootstrap-nexus"
                    )
                    tokens.record_minted_by_system(s, AUDIT_ACTOR, row, dep_row)
        return BootstrapResult(
            organization=org,
            deployment=deployment,
            created_organization=new_org,
            created_deployment=new_dep,
            user_token=user,
            agent_token=agent,
            user_token_reused=user_reused,
            agent_token_reused=agent_reused,
            nexus_token=nexus_token,
            nexus_token_reused=nexus_reused,
        )
    finally:
        db.dispose()


def _still_valid(
    session: Session,
    token: str | None,
    kind: TokenKind,
    organization_id: int,
    deployment_id: int | None,
) -> str | None:
    """``token`` when it authenticates as ``kind`` for exactly this organization (and
    deployment; none for a user token), else None."""
    if not token:
        return None
    principal = tenancy.authenticate(session, token)
    if (
        principal is not None
        and principal.kind is kind
        and principal.organization_id == organization_id
        and principal.deployment_id == deployment_id
    ):
        return token
    return None
