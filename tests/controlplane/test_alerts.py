"""Alert policies on a real control plane, delivered to real receivers on 127.0.0.1: a
webhook server that checks the signature, and an SMTP server (aiosmtpd)."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import running_controlplane
from tests.controlplane.alert_receivers import (
    MailReceiver,
    WebhookReceiver,
    certificate_for_loopback,
)
from tests.support import ControlPlane, Tenant, client, event, wait_until
from tether_api.alerts import CHANNEL_TYPE, AlertEvent, Channel
from tether_api.channels import CHANNEL_KINDS
from tether_controlplane.db import Database
from tether_controlplane.services import alerts
from tether_controlplane.tables import AlertPolicyRow, DeploymentRow, Organization
from tether_sdk.examples.quickstart import defs

SECRET = "a-secret-of-at-least-16-chars"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    found = WebhookReceiver().start()
    try:
        yield found
    finally:
        found.stop()


def deployed(tenant: Tenant) -> None:
    tenant.deploy("quick")
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={"status": "RUNNING", "snapshot": defs.snapshot().model_dump(mode="json")},
        )
        assert r.status_code == 200, r.text


def policy(tenant: Tenant, name: str, url: str, **spec: Any) -> dict[str, Any]:
    body = {"events": ["run_failure"], "channel": {"type": "webhook", "url": url, "secret": SECRET}}
    with tenant.user() as c:
        r = c.put(f"{tenant.dep_path}/alert-policies/{name}", json={**body, **spec})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def finish(tenant: Tenant, run_id: str, final: str = "RUN_FAILURE") -> None:
    with client(tenant.cp.url, tenant.run_token(run_id)) as worker:
        batch = {"events": [event(1, "RUN_START"), event(2, final, "steps failed: load")]}
        for _ in range(2):  # delivered twice: one event all the same
            assert worker.post(f"/api/v1/runs/{run_id}/events", json=batch).status_code == 200


def alerts_of(tenant: Tenant) -> list[dict[str, Any]]:
    with tenant.user() as c:
        return c.get(f"{tenant.dep_path}/alerts").json()  # type: ignore[no-any-return]


def test_a_failed_run_is_alerted_once_signed(tenant: Tenant, receiver: WebhookReceiver) -> None:
    deployed(tenant)
    shown = policy(tenant, "failures", receiver.url, jobs=["etl"])
    assert shown["channel"]["secret"] == "*" * 16
    run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    finish(tenant, run["id"])
    wait_until(lambda: len(receiver.accepted) == 1, timeout=15, what="the webhook delivery")
    [delivery] = receiver.accepted
    assert delivery.signed_with(SECRET)
    assert not delivery.signed_with("another-secret-entirely")
    body = delivery.json()
    assert body["event"] == "run_failure" and body["policy"] == "failures"
    assert body["details"]["run_id"] == run["id"] and body["deployment"] == tenant.deployment
    assert "failed: steps failed: load" in body["summary"]
    [alert] = alerts_of(tenant)
    assert alert["status"] == "DELIVERED" and alert["id"] == delivery.headers["x-tether-alert-id"]
    # Another job's failure, and a success, are not this policy's.
    other = tenant.launch("quick", "refresh_sales")
    finish(tenant, other["id"])
    ok = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    finish(tenant, ok["id"], "RUN_SUCCESS")
    assert len(alerts_of(tenant)) == 1


def test_a_receiver_that_fails_twice_gets_one_delivery(
    tenant: Tenant, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 2
    deployed(tenant)
    policy(tenant, "flaky", receiver.url)
    run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    finish(tenant, run["id"])
    wait_until(lambda: len(receiver.accepted) == 1, timeout=20, what="the third attempt")
    [alert] = alerts_of(tenant)
    assert alert["status"] == "DELIVERED" and alert["attempts"] == 3
    assert receiver.refused == 2 and len(receiver.accepted) == 1


def test_a_location_in_error_and_a_test_alert(tenant: Tenant, receiver: WebhookReceiver) -> None:
    deployed(tenant)
    policy(
        tenant,
        "broken",
        receiver.url,
        events=["location_error"],
        channel={"type": "webhook", "url": receiver.url, "format": "slack"},
    )
    with tenant.agent() as agent:
        for _ in range(2):  # reported twice: it went into ERROR once
            agent.post(
                "/api/v1/agent/code-locations/quick/status",
                json={"status": "ERROR", "message": "ImportError: no module named pandas"},
            )
    wait_until(lambda: len(receiver.accepted) == 1, timeout=15, what="the location alert")
    text = receiver.accepted[0].json()["text"]
    assert "code location quick is in ERROR: ImportError" in text
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/alert-policies/broken/test")
        assert r.status_code == 202, r.text
    wait_until(lambda: len(receiver.accepted) == 2, timeout=15, what="the test alert")
    assert "test alert of policy broken" in receiver.accepted[1].json()["text"]


def test_an_alert_decided_before_a_crash_is_delivered_after_it(tmp_path: Path) -> None:
    receiver = WebhookReceiver()  # not listening yet: deliveries fail
    # A short lease: killed mid-send, the alert is sent again 2 s later.
    with running_controlplane("sqlite", tmp_path, alert_delivery_lease_seconds=2) as cp:
        tenant = cp.tenant()
        deployed(tenant)
        policy(tenant, "failures", receiver.url)
        run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
        finish(tenant, run["id"])
        wait_until(lambda: alerts_of(tenant)[0]["attempts"] >= 1, timeout=15, what="an attempt")
        _crash(cp)
        receiver.start()
        try:
            cp.start()
            wait_until(lambda: len(receiver.accepted) == 1, timeout=30, what="the delivery")
            assert alerts_of(tenant)[0]["status"] == "DELIVERED"
        finally:
            receiver.stop()


def _crash(cp: ControlPlane) -> None:
    assert cp.proc is not None
    cp.proc.kill()  # SIGKILL: no shutdown, nothing flushed
    cp.proc.wait()
    cp.proc = None


def email_channel(mail: MailReceiver) -> dict[str, Any]:
    """An e-mail channel to ``mail`` that logs in (over STARTTLS, the default)."""
    return {
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": mail.port,
        "username": mail.user,
        "password": mail.password,
        "sender": "tether@example.com",
        "recipients": ["oncall@example.com"],
    }


def test_an_alert_by_email_over_starttls_with_auth(tmp_path: Path) -> None:
    """A real SMTP server that offers STARTTLS with a private CA's certificate (trusted by the
    control plane through SSL_CERT_FILE) and takes a login only after it."""
    cert, key = certificate_for_loopback(tmp_path)
    mail = MailReceiver(user="tether", password="smtp-password", tls=(cert, key)).start()
    cp = ControlPlane(tmp_path, env={"SSL_CERT_FILE": str(cert)}).start()
    try:
        tenant = cp.tenant()
        deployed(tenant)
        channel = email_channel(mail)
        # A login over plain text is refused before anything is stored.
        with tenant.user() as c:
            r = c.put(
                f"{tenant.dep_path}/alert-policies/mail",
                json={"events": ["run_failure"], "channel": {**channel, "starttls": False}},
            )
            assert r.status_code == 422, r.text
            assert "would send the SMTP username and password in clear" in r.json()["detail"]
            assert "starttls: true" in r.json()["detail"]
            assert c.get(f"{tenant.dep_path}/alert-policies").json() == []
        shown = policy(tenant, "mail", "", channel=channel)
        assert shown["channel"]["password"] == "*" * 16 and shown["channel"]["starttls"] is True
        run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
        finish(tenant, run["id"])
        wait_until(lambda: len(mail.messages) == 1, timeout=15, what="the e-mail")
        [message] = mail.messages
        assert message["To"] == "oncall@example.com"
        assert "failed" in message["Subject"] and run["id"] in message.get_payload()
        # A wrong password: the attempt fails and says why, nothing is lost.
        policy(tenant, "mail", "", channel={**channel, "password": "wrong"})
        other = tenant.launch("quick", "etl", run_config={"source": "s3://y"})
        finish(tenant, other["id"])
        wait_until(
            lambda: any(a["last_error"] for a in alerts_of(tenant)), timeout=15, what="an error"
        )
        failing = next(a for a in alerts_of(tenant) if a["last_error"])
        assert failing["status"] == "PENDING"  # tried again later, with backoff
        assert failing["last_error"].startswith(f"127.0.0.1:{mail.port}: SMTP")
    finally:
        cp.stop()
        mail.stop()


def test_a_server_certificate_the_control_plane_does_not_trust_gets_no_mail(
    tenant: Tenant, tmp_path: Path
) -> None:
    # The session's control plane has no SSL_CERT_FILE: the certificate is refused, and the
    # login with it.
    mail = MailReceiver(
        user="tether", password="smtp-password", tls=certificate_for_loopback(tmp_path)
    ).start()
    try:
        deployed(tenant)
        channel = email_channel(mail)
        policy(tenant, "mail", "", channel=channel)
        run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
        finish(tenant, run["id"])
        wait_until(
            lambda: any(a["last_error"] for a in alerts_of(tenant)), timeout=15, what="an error"
        )
        [alert] = alerts_of(tenant)
        assert "CERTIFICATE_VERIFY_FAILED" in alert["last_error"], alert
        assert mail.messages == []
    finally:
        mail.stop()


def test_a_webhook_url_is_shown_only_to_its_host(tenant: Tenant, receiver: WebhookReceiver) -> None:
    deployed(tenant)
    shown = policy(tenant, "hook", receiver.url)
    masked = f"http://127.0.0.1:{receiver.port}/" + "*" * 16
    assert shown["channel"]["url"] == masked
    with tenant.user() as c:
        listed = c.get(f"{tenant.dep_path}/alert-policies").json()
        assert [p["channel"]["url"] for p in listed] == [masked]
        assert "/hook" not in c.get(f"{tenant.dep_path}/alert-policies").text
        # The masked form of another host stands for nothing stored.
        elsewhere = {"type": "webhook", "url": "http://127.0.0.2:9/" + "*" * 16}
        r = c.put(
            f"{tenant.dep_path}/alert-policies/hook",
            json={"events": ["run_failure"], "channel": elsewhere},
        )
        assert r.status_code == 422 and "send the URL itself" in r.json()["detail"]
    # Sent back as shown (an edit of something else), it keeps the stored URL.
    policy(tenant, "hook", masked, events=["run_failure", "run_success"])
    run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    finish(tenant, run["id"])
    wait_until(lambda: len(receiver.accepted) == 1, timeout=15, what="the webhook")
    assert receiver.accepted[0].json()["details"]["run_id"] == run["id"]


def test_long_runs_and_lost_agents_are_alerted_once_each(
    tenant: Tenant, receiver: WebhookReceiver
) -> None:
    deployed(tenant)
    with tenant.agent() as agent:
        beat = {"agent_name": "agent-7", "version": "1", "launcher": "process"}
        assert agent.post("/api/v1/agent/heartbeat", json=beat).status_code == 200
    policy(
        tenant,
        "slow-or-lost",
        receiver.url,
        events=["run_long", "agent_unavailable"],
        run_longer_than_minutes=0.02,  # 1.2 s
        agent_unavailable_minutes=0.02,
    )
    run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    with client(tenant.cp.url, tenant.run_token(run["id"])) as worker:
        worker.post(f"/api/v1/runs/{run['id']}/events", json={"events": [event(1, "RUN_START")]})
    wait_until(lambda: len(receiver.accepted) >= 2, timeout=20, what="both alerts")
    events = sorted(d.json()["event"] for d in receiver.accepted)
    assert events == ["agent_unavailable", "run_long"]
    time.sleep(5)  # two more monitor passes: still once each
    assert len(receiver.accepted) == 2


def test_each_time_a_location_breaks_is_alerted_and_masks_are_not_secrets(
    tenant: Tenant, receiver: WebhookReceiver
) -> None:
    deployed(tenant)
    with tenant.user() as c:
        masked = {"type": "webhook", "url": receiver.url, "secret": "*" * 16}
        r = c.put(
            f"{tenant.dep_path}/alert-policies/broken",
            json={"events": ["location_error"], "channel": masked},
        )
        assert r.status_code == 422 and "send the secret itself" in r.json()["detail"]
    policy(tenant, "broken", receiver.url, events=["location_error"])
    with tenant.agent() as agent:
        for status in ("ERROR", "RUNNING", "ERROR"):  # broke, was fixed, broke again
            agent.post(
                "/api/v1/agent/code-locations/quick/status",
                json={"status": status, "message": f"now {status}"},
            )
    wait_until(lambda: len(receiver.accepted) == 2, timeout=15, what="two alerts")
    assert all(d.signed_with(SECRET) for d in receiver.accepted)


def test_each_kind_of_channel_is_described_once() -> None:
    """The descriptions in tether_api.channels cover the kinds of Channel, under the ``type``
    each model names. That every ``match`` on a channel (delivery, masking, the CLI, the
    page) handles every kind is mypy's check, not a test's: each ends in
    ``case _: assert_never(channel)``, which fails to type-check once a kind is missing."""
    [union, *_] = get_args(Channel)
    assert {k.model for k in CHANNEL_KINDS.values()} == set(get_args(union))
    for type_, kind in CHANNEL_KINDS.items():
        assert f"'{type_}'" in CHANNEL_TYPE  # the schema's description of ``type`` names it
        assert set(kind.secrets) <= set(kind.model.model_fields), kind


def _policy_row(s: Session, tenant: Tenant, name: str) -> AlertPolicyRow:
    row = s.scalar(
        select(AlertPolicyRow)
        .join(DeploymentRow, AlertPolicyRow.deployment_id == DeploymentRow.id)
        .join(Organization, DeploymentRow.organization_id == Organization.id)
        .where(
            Organization.name == tenant.org,
            DeploymentRow.name == tenant.deployment,
            AlertPolicyRow.name == name,
        )
    )
    assert row is not None
    return row


def test_a_kind_of_channel_this_version_does_not_know_is_never_delivered(
    tenant: Tenant, receiver: WebhookReceiver
) -> None:
    """A stored policy whose channel is of a kind this version cannot send (a row written by
    a newer version): its alert fails each attempt naming the type, is never recorded as
    delivered, and holds up none of the alerts behind it."""
    policy(tenant, "future", receiver.url)
    policy(tenant, "today", receiver.url)
    routing_key = "a-routing-key-that-stays-secret"
    db = Database(tenant.cp.database_url)
    try:
        # Decided, then made unknown, in one transaction: no pass sees it as a webhook.
        with db.write() as s:
            row = _policy_row(s, tenant, "future")
            dep = s.get(DeploymentRow, row.deployment_id)
            assert dep is not None
            [decided] = alerts.fire(
                s, dep, AlertEvent.TEST, "test:future", "from the future", {}, only=row
            )
            row.spec = {**row.spec, "channel": {"type": "pagerduty", "routing_key": routing_key}}
            future_id = decided.public_id

        def future() -> dict[str, Any]:
            return next(a for a in alerts_of(tenant) if a["id"] == future_id)

        wait_until(lambda: future()["last_error"], timeout=15, what="a failed attempt")
        # The alerts behind it are still sent.
        with tenant.user() as c:
            r = c.post(f"{tenant.dep_path}/alert-policies/today/test")
            assert r.status_code == 202, r.text
            today_id = r.json()["id"]
        wait_until(lambda: len(receiver.accepted) == 1, timeout=15, what="the other alert")
        assert receiver.accepted[0].headers["x-tether-alert-id"] == today_id
        failed = future()
        assert failed["status"] == "PENDING" and failed["delivered_at"] is None, failed
        assert failed["attempts"] >= 1
        assert failed["last_error"] == (
            "not sent: a channel of type 'pagerduty' is not one this control plane can send "
            "(webhook, email); was the policy written by a newer version?"
        )
        assert len(receiver.accepted) == 1
    finally:
        db.dispose()
        with tenant.user() as c:  # read by nothing else in the session's control plane
            assert c.delete(f"{tenant.dep_path}/alert-policies/future").status_code == 204


def test_a_location_restarted_through_one_outage_is_alerted_once(
    tenant: Tenant, receiver: WebhookReceiver
) -> None:
    """A crashing code server is restarted with backoff: ERROR, STARTING, LOADING, ERROR ...
    is one outage, alerted once; it ends when the location is RUNNING (or removed) again."""
    deployed(tenant)
    policy(tenant, "ops", receiver.url, events=["location_error"])
    cycle = ["ERROR", "STARTING", "LOADING"]

    def report(statuses: list[str]) -> None:
        with tenant.agent() as agent:
            for n, status in enumerate(statuses):
                r = agent.post(
                    "/api/v1/agent/code-locations/quick/status",
                    json={"status": status, "message": f"{status} #{n}: code server exited"},
                )
                assert r.status_code == 200, r.text

    report(cycle * 8)  # eight restarts that failed
    fired = alerts_of(tenant)
    assert [a["summary"] for a in fired] == [
        "code location quick is in ERROR: ERROR #0: code server exited"
    ]
    report(["RUNNING", *cycle * 3])  # fixed, then broken again: a second outage
    assert [a["summary"] for a in alerts_of(tenant)] == [
        "code location quick is in ERROR: ERROR #1: code server exited",
        "code location quick is in ERROR: ERROR #0: code server exited",
    ]
    wait_until(lambda: len(receiver.accepted) == 2, timeout=15, what="two deliveries")
    time.sleep(1)
    assert len(receiver.accepted) == 2
