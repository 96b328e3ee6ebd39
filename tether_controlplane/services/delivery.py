"""Sends the alerts that policies decided: webhooks (signed) and e-mail. Each pass claims due
alerts with a lease, sends them outside any transaction, and records the outcome: delivered,
or another attempt later with exponential backoff, or FAILED after MAX_ATTEMPTS. A control
plane that dies mid-send leaves the lease to expire, and the alert is sent again: receivers
deduplicate by X-Tether-Alert-Id. A policy this version cannot read (a kind of channel it does
not know: written by a newer version) fails its attempts and says why; it is never recorded as
delivered, and never holds up the other alerts."""

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, assert_never

import httpx
from pydantic import ValidationError
from sqlalchemy import select

from tether_api.alerts import Alert, AlertPolicySpec, DeliveryStatus, EmailChannel, WebhookChannel
from tether_api.channels import CHANNEL_KINDS, summary
from tether_controlplane.db import Database
from tether_controlplane.services.alerts import (
    SMTPS_PORT,
    alert_model,
    password_in_clear,
    spec_of,
)
from tether_controlplane.tables import AlertPolicyRow, AlertRow, DeploymentRow, utcnow

log = logging.getLogger("tether.alerts")

MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 300.0
SEND_TIMEOUT_SECONDS = 10.0
# Claimed together under one lease, then sent one by one: few enough that the lease (60 s by
# default) outlasts their timeouts.
CLAIM_BATCH = 4


class DeliveryError(Exception):
    """Why one attempt failed, in a line."""


@dataclass(frozen=True)
class Claimed:
    row_id: int
    attempt: int
    alert: Alert
    deployment: str
    spec: AlertPolicySpec


def deliver_due(db: Database, lease: timedelta, now: datetime | None = None) -> int:
    """One pass: send what is due. Returns how many were delivered. ``lease``: how long a
    claimed alert is left alone while it is being sent (after a crash mid-send, the time
    until it is sent again)."""
    delivered = 0
    for claimed in claim(db, now or utcnow(), lease):
        try:
            send(claimed)
        except DeliveryError as exc:
            record(db, claimed, str(exc))
        except Exception as exc:  # a bug in one channel must not stop the others
            channel = summary(claimed.spec.channel)
            log.exception("alert %s: sending by %s failed", claimed.alert.id, channel)
            record(db, claimed, f"{type(exc).__name__}: {exc}")
        else:
            record(db, claimed, None)
            delivered += 1
    return delivered


def claim(db: Database, now: datetime, lease: timedelta) -> list[Claimed]:
    with db.write() as s:
        rows = s.scalars(
            select(AlertRow)
            .where(AlertRow.status == DeliveryStatus.PENDING, AlertRow.next_attempt_at <= now)
            .order_by(AlertRow.id)
            .limit(CLAIM_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        found = []
        for row in rows:
            policy = s.get(AlertPolicyRow, row.policy_id)
            dep = s.get(DeploymentRow, row.deployment_id)
            assert policy is not None and dep is not None
            if not policy.enabled or policy.spec.get("deleted"):
                row.status = DeliveryStatus.FAILED
                row.last_error = "not sent: its policy was disabled or deleted first"
                continue
            row.attempts += 1
            row.next_attempt_at = now + lease
            try:
                spec = spec_of(policy)
            except ValidationError as exc:
                # Not sent, not delivered: tried again (a newer replica may read it) until
                # MAX_ATTEMPTS, like any failed attempt.
                failed(row, unreadable(policy.spec, exc), now)
                continue
            found.append(Claimed(row.id, row.attempts, alert_model(s, row), dep.name, spec))
        return found


def unreadable(stored: dict[str, Any], exc: ValidationError) -> str:
    """Why a stored policy cannot be sent through, in a line with nothing secret in it."""
    kind = (stored.get("channel") or {}).get("type")
    if kind not in CHANNEL_KINDS:
        return (
            f"not sent: a channel of type {kind!r} is not one this control plane can send "
            f"({', '.join(CHANNEL_KINDS)}); was the policy written by a newer version?"
        )
    [first, *_] = exc.errors(include_url=False, include_input=False)
    where = ".".join(str(part) for part in first["loc"])
    return f"not sent: its stored policy is not valid here: {where}: {first['msg']}"


def record(db: Database, claimed: Claimed, error: str | None) -> None:
    with db.write() as s:
        row = s.get(AlertRow, claimed.row_id)
        assert row is not None
        if row.attempts != claimed.attempt or row.status != DeliveryStatus.PENDING:
            return  # its lease ran out and another pass took it over: that one records
        now = utcnow()
        if error is None:
            row.status, row.delivered_at, row.last_error = DeliveryStatus.DELIVERED, now, None
            return
        failed(row, error, now)


def failed(row: AlertRow, error: str, now: datetime) -> None:
    """An attempt that failed: another later, with backoff, or FAILED after MAX_ATTEMPTS."""
    row.last_error = error[:2000]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = DeliveryStatus.FAILED
        log.warning("alert %s: giving up after %d attempts: %s", row.public_id, row.attempts, error)
        return
    backoff = min(2.0 ** (row.attempts - 1), MAX_BACKOFF_SECONDS)
    row.next_attempt_at = now + timedelta(seconds=backoff)


def send(claimed: Claimed) -> None:
    channel = claimed.spec.channel
    # A kind of channel not handled here fails mypy at assert_never (the check that every
    # kind is sent). At run time a stored kind this version does not know never gets here:
    # ``claim`` cannot read its policy, and fails the attempt.
    match channel:
        case WebhookChannel():
            send_webhook(channel, claimed)
        case EmailChannel():
            send_email(channel, claimed)
        case _:
            assert_never(channel)


def body_of(channel: WebhookChannel, claimed: Claimed) -> bytes:
    alert = claimed.alert
    if channel.format == "slack":
        payload: dict[str, object] = {"text": f"[{claimed.deployment}] {alert.summary}"}
    else:
        payload = {
            **alert.model_dump(
                mode="json",
                include={"id", "policy", "event", "key", "summary", "details", "created_at"},
            ),
            "deployment": claimed.deployment,
        }
    return json.dumps(payload, sort_keys=True).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What X-Tether-Signature carries: the receiver recomputes it, and refuses timestamps
    too far from its own clock (replays)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def send_webhook(channel: WebhookChannel, claimed: Claimed) -> None:
    body = body_of(channel, claimed)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "tether-alerts",
        "X-Tether-Alert-Id": claimed.alert.id,
        "X-Tether-Timestamp": timestamp,
    }
    if channel.secret:
        headers["X-Tether-Signature"] = signature(channel.secret, timestamp, body)
    try:
        response = httpx.post(
            str(channel.url), content=body, headers=headers, timeout=SEND_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{channel.url.host}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(
            f"{channel.url.host} answered {response.status_code}: {response.text[:200]}"
        )


def send_email(channel: EmailChannel, claimed: Claimed) -> None:
    alert = claimed.alert
    message = EmailMessage()
    message["Subject"] = f"[tether {claimed.deployment}] {alert.summary}"[:200]
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.recipients)
    message["X-Tether-Alert-Id"] = alert.id
    details = json.dumps(alert.details, indent=2, sort_keys=True)
    message.set_content(
        f"{alert.summary}\n\npolicy: {alert.policy}\nevent: {alert.event}\n\n{details}\n"
    )
    if password_in_clear(channel.model_dump()):
        # A policy stored before this was refused at the API: never send its password.
        raise DeliveryError(
            f"{channel.smtp_host}:{channel.smtp_port}: not sent: logging in without TLS would "
            f"send the password in clear; set starttls: true or smtp_port {SMTPS_PORT}"
        )
    # Certificates are checked against the system's CAs, or SSL_CERT_FILE's (a private CA).
    tls = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if channel.smtp_port == SMTPS_PORT:
            smtp = smtplib.SMTP_SSL(
                channel.smtp_host, channel.smtp_port, timeout=SEND_TIMEOUT_SECONDS, context=tls
            )
        else:
            smtp = smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=SEND_TIMEOUT_SECONDS)
        with smtp:
            if channel.starttls and channel.smtp_port != SMTPS_PORT:
                smtp.starttls(context=tls)
            if channel.username:
                smtp.login(channel.username, channel.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(
            f"{channel.smtp_host}:{channel.smtp_port}: {type(exc).__name__}: {exc}"
        ) from exc
