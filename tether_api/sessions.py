"""Web UI sign-in: sessions made from a user token or a one-time sign-in link."""

from datetime import datetime

from pydantic import BaseModel, Field

from tether_api.wire import JsonInt


class SessionCreated(BaseModel):
    token: str = Field(
        description="The session's secret, shown once. The web UI keeps it in an HttpOnly "
        "cookie; it works as a bearer token with the rights of the user token it came from."
    )
    csrf_token: str = Field(description="Sent back with every state-changing web UI form.")
    organization: str
    expires_at: datetime


class SignInLinkCreate(BaseModel):
    ttl_seconds: JsonInt = Field(
        default=900, ge=60, le=86_400, description="How long the link stays usable (once)."
    )


class SignInLink(BaseModel):
    path: str = Field(description="Where to open it on the control plane: /sign-in/link?code=…")
    expires_at: datetime
