"""Each kind of alert channel, described once: its ``type``, a label for people, its
write-only fields, and where it sends, summarised for display with nothing secret in it. The
control plane (storing, showing and delivering policies), ``tether alerts list`` and the web
UI's Alerts page all use these, instead of each telling the kinds apart its own way.

Adding a kind: its model in ``tether_api.alerts``, joined to ``Channel``; a ChannelKind here,
in CHANNEL_KINDS; and a case in every ``match`` on a channel. mypy finds each ``match`` that
misses it: they all end in ``case _: assert_never(channel)``, which only type-checks when the
cases before it took every kind of ``Channel``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, assert_never, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from tether_api.alerts import Channel, EmailChannel, WebhookChannel

# What a write-only field shows instead of its value; sent back, it keeps the stored one.
MASK = "*" * 16

C = TypeVar("C", bound=BaseModel)


def masked_url(url: str) -> str:
    """A webhook URL as it is shown: scheme, host and port only. The path and query of a
    webhook are often its credential (a Slack or Teams incoming webhook); sent back, this
    form keeps the stored URL. A URL already masked comes back unchanged."""
    parts = urlsplit(url)
    if parts.path in ("", "/") and not parts.query and "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], f"/{MASK}", "", ""))


@dataclass(frozen=True)
class ChannelKind(Generic[C]):
    model: type[C]
    label: str  # for people: "e-mail", where ``type`` says "email"
    secrets: tuple[str, ...]  # write-only: shown as MASK, kept when MASK is sent back
    destination: Callable[[C], str]  # where it sends, for display: nothing secret in it

    @property
    def type(self) -> str:
        """The ``type`` that names the kind, as the model's Literal spells it."""
        [tag] = get_args(self.model.model_fields["type"].annotation)
        return str(tag)

    def summary(self, channel: C) -> str:
        return f"{self.label} to {self.destination(channel)}"


def _webhook_destination(channel: WebhookChannel) -> str:
    slack = " (Slack)" if channel.format == "slack" else ""
    return masked_url(str(channel.url)) + slack


def _email_destination(channel: EmailChannel) -> str:
    return ", ".join(channel.recipients)


WEBHOOK = ChannelKind(WebhookChannel, "webhook", ("secret",), _webhook_destination)
EMAIL = ChannelKind(EmailChannel, "e-mail", ("password",), _email_destination)

# By ``type``: what a stored channel's tag must be for this version to read and send it.
CHANNEL_KINDS: dict[str, ChannelKind[Any]] = {k.type: k for k in (WEBHOOK, EMAIL)}
# The write-only fields of every kind (a stored channel read as a plain dict).
SECRET_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(f for k in CHANNEL_KINDS.values() for f in k.secrets)
)


def kind_of(channel: Channel) -> ChannelKind[Any]:
    match channel:
        case WebhookChannel():
            return WEBHOOK
        case EmailChannel():
            return EMAIL
        case _:
            assert_never(channel)


def summary(channel: Channel) -> str:
    """Where the channel sends, for people, as the CLI and the web UI show it: ``webhook to
    https://hooks.example.com/****************`` (to its host only; `` (Slack)`` after it
    for that format), ``e-mail to a@example.com, b@example.com``."""
    match channel:
        case WebhookChannel():
            return WEBHOOK.summary(channel)
        case EmailChannel():
            return EMAIL.summary(channel)
        case _:
            assert_never(channel)
