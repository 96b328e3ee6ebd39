"""``tether controlplane bootstrap``: create what is missing, mint a user and an agent token."""

from pydantic import BaseModel

from tether_controlplane import migrate
from tether_controlplane.db import Database
from tether_controlplane.services import tenancy
from tether_controlplane.tokens import TokenKind


class BootstrapResult(BaseModel):
    organization: str
    deployment: str
    created_organization: bool
    created_deployment: bool
    user_token: str
    agent_token: str


def bootstrap(database_url: str, org: str, deployment: str, concurrency: int) -> BootstrapResult:
    db = Database(database_url)
    try:
        migrate.upgrade(db.engine)
        with db.write() as s:
            org_row, new_org = tenancy.get_or_create_org(s, org)
            dep_row, new_dep = tenancy.get_or_create_deployment(s, org_row, deployment, concurrency)
            user = tenancy.mint_token(s, TokenKind.USER, org_row.id, description="bootstrap")
            agent = tenancy.mint_token(
                s, TokenKind.AGENT, org_row.id, dep_row.id, description="bootstrap"
            )
        return BootstrapResult(
            organization=org,
            deployment=deployment,
            created_organization=new_org,
            created_deployment=new_dep,
            user_token=user,
            agent_token=agent,
        )
    finally:
        db.dispose()
