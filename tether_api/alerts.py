"""Alert policies (what to tell whom, when) and the alerts they fired, with their delivery."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, HttpUrl

from tether_api.names import Name


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


class WebhookChannel(BaseModel):
    type: Literal["webhook"] = "webhook"
    url: HttpUrl = Field(
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
    type: Literal["email"] = "email"
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(
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
    enabled: bool = True
    jobs: list[Name] = Field(default_factory=list, description="Run events: only these jobs.")
    code_locations: list[Name] = Field(
        default_factory=list, description="Only events of these code locations."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Run events: only runs with all these tags."
    )
    run_longer_than_minutes: float = Field(default=60, gt=0, le=100_000)
    agent_unavailable_minutes: float = Field(default=5, gt=0, le=100_000)
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
