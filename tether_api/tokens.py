"""User, agent and Nexus tokens as their owners manage them: listed (never with the
secret), created with a name and an optional expiry, revoked."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from tether_api.names import Name
from tether_api.wire import JsonDateTime, Text

# The header an agent with an organization-wide token sends to say which deployment it
# serves; a deployment token may send it too (it must then name its own deployment).
DEPLOYMENT_HEADER = "X-Tether-Deployment"


class ManagedTokenKind(StrEnum):
    """The kinds a person creates and revokes; sessions, sign-in links and run tokens are
    made and ended by the control plane itself."""

    USER = "user"
    AGENT = "agent"
    # The agent's Nexus service: creates and reads runs of one deployment, and terminates
    # the runs it started (Temporal workflows running Tether jobs).
    NEXUS = "nexus"


class TokenScopeKind(StrEnum):
    DEPLOYMENT = "deployment"
    ORGANIZATION = "organization"


_NAME = Field(
    min_length=1, max_length=100, description="What the token is for, e.g. 'ci' or 'agent-eu'."
)
_EXPIRES_AT = Field(
    default=None,
    description="When the token stops working, a future time (a past one is refused with a "
    "422); unset: never.",
)
USER_DEPLOYMENT = "a user token acts for the whole organization: give it no deployment"
AGENT_NEEDS_DEPLOYMENT = (
    "an agent token needs a deployment, or scope 'organization' for all of them"
)
NEXUS_NEEDS_DEPLOYMENT = (
    "a nexus token serves one deployment: name it with 'deployment' (`tether tokens create "
    "NAME --kind nexus --deployment DEP`)"
)
NEXUS_ORGANIZATION = (
    "a nexus token serves one deployment, never the whole organization: drop scope "
    "'organization' and name the deployment whose agent hosts the Nexus service"
)
ORGANIZATION_AGENT_DEPLOYMENT = (
    "an organization-wide agent token names no deployment: drop 'deployment' or use scope "
    "'deployment'"
)


def _is_string(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"type": "string"}}}


class NewUserToken(BaseModel):
    """A new user token: the API and CLI, for the whole organization."""

    kind: Literal["user"] = Field(description="'user': the API and the CLI.")
    name: Text = _NAME
    scope: Literal[TokenScopeKind.ORGANIZATION] | None = Field(
        default=None,
        description="A user token acts for the organization: 'organization', or leave unset.",
    )
    deployment: None = Field(
        default=None,
        description="Not for a user token (it acts for the whole organization): absent or null.",
    )
    expires_at: JsonDateTime | None = _EXPIRES_AT

    @field_validator("deployment", mode="before")
    @classmethod
    def _no_deployment(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(USER_DEPLOYMENT)
        return value

    @field_validator("scope", mode="before")
    @classmethod
    def _organization(cls, value: Any) -> Any:
        if value == TokenScopeKind.DEPLOYMENT.value:
            raise ValueError(USER_DEPLOYMENT)
        return value


class NewAgentToken(BaseModel):
    """A new agent token: for one deployment (``deployment``), or with scope 'organization'
    for every deployment of the organization (then no ``deployment``)."""

    # The rule _scope_fits enforces, in JSON Schema: with scope 'organization', deployment is
    # absent or null; otherwise it is required. (if/then/else, which generated clients
    # ignore: the model stays a plain object with both properties optional.)
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "required": ["scope"],
                "properties": {"scope": {"const": TokenScopeKind.ORGANIZATION.value}},
            },
            "then": {"properties": {"deployment": {"type": "null"}}},
            "else": _is_string("deployment"),
        }
    )

    kind: Literal["agent"] = Field(description="'agent': an agent.")
    name: Text = _NAME
    deployment: Name | None = Field(
        default=None,
        description="The one deployment the token serves. Required unless scope is "
        "'organization', and then absent or null.",
    )
    scope: TokenScopeKind | None = Field(
        default=None,
        description="'deployment' (the one named; the default) or 'organization' (every "
        "deployment of the organization; the agent names the one it serves in the "
        f"{DEPLOYMENT_HEADER} header).",
    )
    expires_at: JsonDateTime | None = _EXPIRES_AT

    @model_validator(mode="after")
    def _scope_fits(self) -> "NewAgentToken":
        if self.scope is TokenScopeKind.ORGANIZATION:
            if self.deployment is not None:
                raise ValueError(ORGANIZATION_AGENT_DEPLOYMENT)
        elif self.deployment is None:
            raise ValueError(AGENT_NEEDS_DEPLOYMENT)
        else:
            self.scope = TokenScopeKind.DEPLOYMENT
        return self


class NewNexusToken(BaseModel):
    """A new Nexus token: what an agent's Nexus service (``tether.v1.Runs``) calls the run
    API with (the agent's TETHER_NEXUS_TOKEN). Always for one deployment: it creates and
    reads runs there, and terminates the runs started through the Nexus service; every
    other endpoint refuses it (403)."""

    kind: Literal["nexus"] = Field(
        description="'nexus': an agent's Nexus service, for Temporal workflows that run jobs."
    )
    name: Text = _NAME
    deployment: Name = Field(description="The one deployment the token serves (required).")
    scope: Literal[TokenScopeKind.DEPLOYMENT] | None = Field(
        default=None,
        description="Always 'deployment' (the default); 'organization' is refused.",
    )
    expires_at: JsonDateTime | None = _EXPIRES_AT

    @model_validator(mode="before")
    @classmethod
    def _needs_deployment(cls, value: Any) -> Any:
        # Said here, with the fix, rather than as pydantic's bare "Field required".
        if isinstance(value, dict) and value.get("deployment") is None:
            if value.get("scope") == TokenScopeKind.ORGANIZATION.value:
                raise ValueError(NEXUS_ORGANIZATION)
            raise ValueError(NEXUS_NEEDS_DEPLOYMENT)
        return value

    @field_validator("scope", mode="before")
    @classmethod
    def _one_deployment(cls, value: Any) -> Any:
        if value == TokenScopeKind.ORGANIZATION.value:
            raise ValueError(NEXUS_ORGANIZATION)
        return value


# ``POST /api/v1/tokens``: one schema per kind, told apart by ``kind``.
TokenCreate = Annotated[NewUserToken | NewAgentToken | NewNexusToken, Field(discriminator="kind")]


class Token(BaseModel):
    """A user, agent or Nexus token, without its secret."""

    id: int = Field(description="Names the token in `tether tokens revoke` and the API.")
    name: str = Field(description="What the token is for.")
    kind: ManagedTokenKind
    scope: TokenScopeKind = Field(
        description="organization: user tokens, and agent tokens for every deployment; "
        "deployment: an agent or nexus token for the one in `deployment`."
    )
    deployment: str | None = Field(
        default=None, description="The deployment of a deployment-scoped agent or nexus token."
    )
    created_at: datetime
    expires_at: datetime | None = Field(default=None, description="Unset: it never expires.")
    revoked_at: datetime | None = Field(default=None, description="Set once revoked.")
    active: bool = Field(description="Neither revoked nor expired: it works.")


class TokenSecret(BaseModel):
    """A token just created: its description and, this once, its secret."""

    token: str = Field(description="The secret. It is shown once and stored only as a hash.")
    info: Token = Field(description="The token as `GET /api/v1/tokens` lists it.")
