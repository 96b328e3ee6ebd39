"""Alert policies (what to tell whom, when) and the alerts they fired, with their delivery."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import AfterValidator, BaseModel, Field, HttpUrl

from tether_api.names import Name
from tether_api.wire import JSON_NUMBER, JsonBool


class AlertEvent(StrEnum):
    RUN_FAILURE = "run_failure"
    RUN_SUCCESS = "run_success"
    RUN_LONG = "run_long"  # STARTED for longer than run_longer_than_minutes
    LOCATION_ERROR = "location_error"
    AGENT_UNAVAILABLE = "agent_unavailable"  # silent for agent_unavailable_minutes
    TICK_FAILURE = "tick_failure"  # a schedule tick that created no run; a sensor that failed
    TEST = "test"  # POST .../test


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # decided; not delivered yet (or being retried)
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # gave up after max attempts; last_error says why


# A channel names its kind: ``type`` is required (no default), so the schema and the server
# agree that a channel without it is refused (422 at channel.type).
CHANNEL_TYPE = "The channel's kind: 'webhook' or 'email'. Required."


# pydantic's limit for an HttpUrl, which it checks on the URL as given; the URL stored is its
# normalized form, which may be longer.
MAX_URL_CHARS = 2083


def _stored_url_fits(url: HttpUrl) -> HttpUrl:
    # The stored URL is read back with the same type: one longer than it allows would make
    # the policy unreadable (a 500 on every read), so it is refused here instead.
    if len(str(url)) > MAX_URL_CHARS:
        raise ValueError(
            f"url is {len(str(url))} characters once normalized ('/' added, characters "
            f"%-encoded); the limit is {MAX_URL_CHARS}: use a shorter URL"
        )
    return url


class WebhookChannel(BaseModel):
    type: Literal["webhook"] = Field(description=CHANNEL_TYPE)
    url: Annotated[HttpUrl, AfterValidator(_stored_url_fits)] = Field(
        description="Where alerts are POSTed as JSON. Shown only to its host "
        "(https://hooks.example.com/****************): a webhook's path is often its "
        "credential. Sent back in that form, it keeps the stored URL."
    )
    format: Literal["json", "slack"] = Field(
        default="json", description="'slack': {\"text\": ...}, for a Slack incoming webhook."
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="Signs each delivery: X-Tether-Signature is sha256=HMAC-SHA256(secret, "
        "'{X-Tether-Timestamp}.{body}'). Write-only: shown as 16 '*', which, sent back, "
        "keeps it.",
    )


class EmailChannel(BaseModel):
    type: Literal["email"] = Field(description=CHANNEL_TYPE)
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: Annotated[int, Ge(1), Le(65535), JSON_NUMBER] = 587
    starttls: JsonBool = Field(
        default=True,
        description="Upgrade the connection with STARTTLS (port 465 uses implicit TLS "
        "instead). false only without a username and password: a login is never sent in "
        "clear.",
    )
    username: str | None = Field(default=None, max_length=255)
    password: str | None = Field(
        default=None,
        max_length=255,
        description="Write-only: shown as 16 '*', which, sent back, keeps it.",
    )
    sender: str = Field(min_length=3, max_length=255, description="The From address.")
    recipients: list[Annotated[str, Field(min_length=3, max_length=255)]] = Field(
        min_length=1, max_length=50
    )


Channel = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]


class AlertPolicySpec(BaseModel):
    """What a policy listens to and where it sends alerts."""

    events: list[AlertEvent] = Field(min_length=1, description="What fires it.")
    enabled: JsonBool = True
    jobs: list[Name] = Field(default_factory=list, description="Run events: only these jobs.")
    code_locations: list[Name] = Field(
        default_factory=list, description="Only events of these code locations."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Run events: only runs with all these tags."
    )
    run_longer_than_minutes: Annotated[float, Gt(0), Le(100_000), JSON_NUMBER] = 60
    agent_unavailable_minutes: Annotated[float, Gt(0), Le(100_000), JSON_NUMBER] = 5
    channel: Channel


class AlertPolicy(AlertPolicySpec):
    name: str
    deployment: str
    updated_at: datetime


class Alert(BaseModel):
    id: str
    policy: str
    event: AlertEvent
    key: str = Field(description="What it is about: fired once per policy and key.")
    summary: str
    details: dict[str, Any]
    created_at: datetime
    status: DeliveryStatus
    attempts: int
    last_error: str | None = None
    delivered_at: datetime | None = None
