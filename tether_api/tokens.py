"""User and agent tokens as their owners manage them: listed (never with the secret),
created with a name and an optional expiry, revoked."""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from tether_api.models import Text
from tether_api.names import Name

# The header an agent with an organization-wide token sends to say which deployment it
# serves; a deployment token may send it too (it must then name its own deployment).
DEPLOYMENT_HEADER = "X-Tether-Deployment"


class ManagedTokenKind(StrEnum):
    """The kinds a person creates and revokes; sessions, sign-in links and run tokens are
    made and ended by the control plane itself."""

    USER = "user"
    AGENT = "agent"


class TokenScopeKind(StrEnum):
    DEPLOYMENT = "deployment"
    ORGANIZATION = "organization"


class TokenCreate(BaseModel):
    """A new user or agent token."""

    name: Text = Field(
        min_length=1, max_length=100, description="What the token is for, e.g. 'ci' or 'agent-eu'."
    )
    kind: ManagedTokenKind = Field(description="user: the API and CLI; agent: an agent.")
    deployment: Name | None = Field(
        default=None,
        description="Agent tokens scoped to one deployment: its name. Leave unset with "
        "scope 'organization'; user tokens take none.",
    )
    scope: TokenScopeKind | None = Field(
        default=None,
        description="Agent tokens: 'deployment' (the one named; the default when one is) or "
        "'organization' (every deployment of the organization; the agent names the one it "
        f"serves in the {DEPLOYMENT_HEADER} header). User tokens act for the organization.",
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the token stops working; unset: never."
    )

    @model_validator(mode="after")
    def _scope_fits_kind(self) -> "TokenCreate":
        if self.kind is ManagedTokenKind.USER:
            if self.deployment is not None or self.scope is TokenScopeKind.DEPLOYMENT:
                raise ValueError(
                    "a user token acts for the whole organization: give it no deployment"
                )
            self.scope = TokenScopeKind.ORGANIZATION
        elif self.scope is TokenScopeKind.ORGANIZATION:
            if self.deployment is not None:
                raise ValueError(
                    "an organization-wide agent token names no deployment: drop 'deployment' "
                    "or use scope 'deployment'"
                )
        elif self.deployment is None:
            raise ValueError(
                "an agent token needs a deployment, or scope 'organization' for all of them"
            )
        else:
            self.scope = TokenScopeKind.DEPLOYMENT
        return self


class Token(BaseModel):
    """A user or agent token, without its secret."""

    id: int = Field(description="Names the token in `tether tokens revoke` and the API.")
    name: str = Field(description="What the token is for.")
    kind: ManagedTokenKind
    scope: TokenScopeKind = Field(
        description="organization: user tokens, and agent tokens for every deployment; "
        "deployment: an agent token for the one in `deployment`."
    )
    deployment: str | None = Field(
        default=None, description="The deployment of a deployment-scoped agent token."
    )
    created_at: datetime
    expires_at: datetime | None = Field(default=None, description="Unset: it never expires.")
    revoked_at: datetime | None = Field(default=None, description="Set once revoked.")
    active: bool = Field(description="Neither revoked nor expired: it works.")


class TokenSecret(BaseModel):
    """A token just created: its description and, this once, its secret."""

    token: str = Field(description="The secret. It is shown once and stored only as a hash.")
    info: Token = Field(description="The token as `GET /api/v1/tokens` lists it.")
