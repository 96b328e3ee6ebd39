"""Request dependencies: the database, the settings, and who is calling (by bearer token)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tether_api.names import NAME_PATTERN
from tether_controlplane.api.middleware import PRINCIPAL_SCOPE_KEY
from tether_controlplane.db import Database
from tether_controlplane.errors import ApiError, NotFound
from tether_controlplane.services import tenancy
from tether_controlplane.services.tenancy import Principal
from tether_controlplane.settings import Settings
from tether_controlplane.tables import DeploymentRow
from tether_controlplane.token_secrets import TokenKind

NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)]
RunIdPath = Annotated[str, Path(min_length=1, max_length=36)]


class Forbidden(ApiError):
    status_code = 403


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# Declares the bearer scheme in the OpenAPI document (Swagger's "Authorize" uses it); the
# token itself is checked by AuthMiddleware before the body is read.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A user, agent, run or nexus token: `Authorization: Bearer <token>`. An agent with "
    "an organization-wide agent token also names the deployment it serves: "
    "`X-Tether-Deployment: <deployment>`.",
)


async def principal(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """Who is calling, as AuthMiddleware found from the token (it refuses requests without a
    valid one before this runs). Async: it only reads the scope, no trip to a thread."""
    found: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if found is None:  # a programming error, not the caller's
        raise RuntimeError(f"{request.url.path} is outside AuthMiddleware's prefix")
    return found


def _require(p: Principal, kind: TokenKind, *also: TokenKind) -> Principal:
    if p.kind != kind and p.kind not in also:
        raise Forbidden(f"this endpoint needs {_a(kind)} token, and {_a(p.kind)} token was sent")
    return p


def _a(kind: TokenKind) -> str:
    return f"{'an' if kind == TokenKind.AGENT else 'a'} {kind.value}"


async def user(p: Annotated[Principal, Depends(principal)]) -> Principal:
    # A web UI session acts with its user token's rights, through the same endpoints.
    return _require(p, TokenKind.USER, TokenKind.SESSION)


async def user_or_nexus(p: Annotated[Principal, Depends(principal)]) -> Principal:
    # The few run endpoints an agent's Nexus service calls (create, read, terminate); the
    # handlers narrow what a Nexus token may do there (its deployment, the runs it started).
    if p.kind not in (TokenKind.USER, TokenKind.SESSION, TokenKind.NEXUS):
        raise Forbidden(
            f"this endpoint needs a user or nexus token, and {_a(p.kind)} token was sent"
        )
    return p


async def user_token(p: Annotated[Principal, Depends(principal)]) -> Principal:
    # What mints a credential: a web session must not make ones that outlive it (a sign-in
    # link would renew it forever, an agent token survives its sign-out).
    return _require(p, TokenKind.USER)


async def session_starter(p: Annotated[Principal, Depends(principal)]) -> Principal:
    return _require(p, TokenKind.USER, TokenKind.SIGN_IN)


async def web_session(p: Annotated[Principal, Depends(principal)]) -> Principal:
    return _require(p, TokenKind.SESSION)


async def agent(p: Annotated[Principal, Depends(principal)]) -> Principal:
    return _require(p, TokenKind.AGENT)


async def run_worker(p: Annotated[Principal, Depends(principal)], run_id: RunIdPath) -> Principal:
    _require(p, TokenKind.RUN)
    if p.run_id != run_id:
        # Same answer as a missing run: a run token learns nothing about other runs.
        raise NotFound(f"run {run_id!r} not found")
    return p


@dataclass(frozen=True)
class TokenScope:
    """Agent and run tokens: the token itself fixes the deployment."""

    principal: Principal
    deployment_id: int

    def deployment(self, session: Session) -> DeploymentRow:
        return tenancy.deployment_by_id(session, self.deployment_id)


@dataclass(frozen=True)
class NamedScope:
    """User tokens: the deployment named in the path, within the token's organization.

    Resolved in the handler's own session, so a request reads it once; a name outside the
    organization answers 404 from there. A Nexus token sees its own deployment only: any
    other name answers the same 404 as an unknown one."""

    principal: Principal
    deployment_name: str

    @property
    def is_nexus(self) -> bool:
        return self.principal.kind == TokenKind.NEXUS

    def deployment(self, session: Session) -> DeploymentRow:
        dep = tenancy.find_deployment(session, self.principal.organization_id, self.deployment_name)
        if self.is_nexus and dep.id != self.principal.deployment_id:
            raise tenancy.deployment_not_found(self.deployment_name)
        return dep


async def user_scope(dep: NamePath, p: Annotated[Principal, Depends(user)]) -> NamedScope:
    return NamedScope(p, dep)


async def user_or_nexus_scope(
    dep: NamePath, p: Annotated[Principal, Depends(user_or_nexus)]
) -> NamedScope:
    return NamedScope(p, dep)


async def agent_scope(p: Annotated[Principal, Depends(agent)]) -> TokenScope:
    assert p.deployment_id is not None
    return TokenScope(p, p.deployment_id)


async def run_scope(p: Annotated[Principal, Depends(run_worker)]) -> TokenScope:
    assert p.deployment_id is not None
    return TokenScope(p, p.deployment_id)


UserScope = Annotated[NamedScope, Depends(user_scope)]
UserOrNexusScope = Annotated[NamedScope, Depends(user_or_nexus_scope)]
AgentScope = Annotated[TokenScope, Depends(agent_scope)]
RunScope = Annotated[TokenScope, Depends(run_scope)]
UserPrincipal = Annotated[Principal, Depends(user)]
UserTokenOnly = Annotated[Principal, Depends(user_token)]
SessionStarter = Annotated[Principal, Depends(session_starter)]
WebSession = Annotated[Principal, Depends(web_session)]
