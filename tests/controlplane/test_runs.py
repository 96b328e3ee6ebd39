"""Runs: FIFO admission under the concurrency limit, transitions, listing, events."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from tests.support import ControlPlane, Tenant, client, event
from tether_controlplane.db import Database
from tether_controlplane.tables import RunRow


def _report(tenant: Tenant, run_id: str, **body: Any) -> dict[str, Any]:
    with tenant.agent() as c:
        r = c.post(f"/api/v1/agent/runs/{run_id}/status", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def _launched(tenant: Tenant) -> list[str]:
    return [
        r["payload"]["run_id"] for r in tenant.poll(max_requests=100) if r["type"] == "LAUNCH_RUN"
    ]


def test_admission_is_fifo_under_the_concurrency_limit(controlplane: ControlPlane) -> None:
    tenant = controlplane.tenant(concurrency=2)
    tenant.deploy()
    runs = [tenant.launch()["id"] for _ in range(5)]
    assert [tenant.run(r)["status"] for r in runs] == ["STARTING"] * 2 + ["QUEUED"] * 3
    assert _launched(tenant) == runs[:2]
    # One finishes: exactly the oldest queued run takes its slot.
    _report(tenant, runs[0], status="SUCCESS")
    assert tenant.run(runs[2])["status"] == "STARTING"
    assert tenant.run(runs[3])["status"] == "QUEUED"
    assert _launched(tenant) == [runs[2]]
    # Raising the limit admits the rest.
    with tenant.user() as c:
        r = c.patch(tenant.dep_path, json={"run_concurrency_limit": 10})
        assert r.json()["run_concurrency_limit"] == 10
    assert _launched(tenant) == runs[3:]


def test_final_status_is_final(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    _report(tenant, run, status="STARTED")
    assert _report(tenant, run, status="SUCCESS")["status"] == "SUCCESS"
    late = _report(tenant, run, status="FAILURE", message="late monitor report")
    assert late["status"] == "SUCCESS" and late["ended_at"] is not None
    with tenant.agent() as c:
        assert c.post(f"/api/v1/agent/runs/{run}/token").status_code == 409


def test_launch_call_hands_out_run_location_and_a_token_only_while_starting(
    controlplane: ControlPlane,
) -> None:
    tenant, other = controlplane.tenant(), controlplane.tenant()
    tenant.deploy()
    run = tenant.launch()["id"]
    with tenant.agent() as c:
        first = c.post(f"/api/v1/agent/runs/{run}/launch")
        assert first.status_code == 200, first.text
        launch = first.json()
        assert launch["run"]["id"] == run and launch["run"]["status"] == "STARTING"
        assert launch["code_location"]["name"] == launch["run"]["code_location"]
        assert launch["code_location"]["spec"]["module"] == "tether_sdk.examples.quickstart"
        # A retried launch gets a new token, which revokes the first one.
        second = c.post(f"/api/v1/agent/runs/{run}/launch").json()
    with client(tenant.cp.url, launch["token"]) as old:
        assert old.post(f"/api/v1/runs/{run}/heartbeat").status_code == 401
    with client(tenant.cp.url, second["token"]) as new:
        assert new.get(f"/api/v1/runs/{run}").json()["id"] == run
    # Launched already: the run and its location, but no token (the worker has its own).
    _report(tenant, run, status="STARTED")
    with tenant.agent() as c:
        started = c.post(f"/api/v1/agent/runs/{run}/launch").json()
    assert started["run"]["status"] == "STARTED" and started["token"] is None
    with client(tenant.cp.url, second["token"]) as worker:
        assert worker.post(f"/api/v1/runs/{run}/heartbeat").status_code == 200
    # Another deployment's agent: as if the run did not exist.
    with other.agent() as c:
        assert c.post(f"/api/v1/agent/runs/{run}/launch").status_code == 404


def test_failure_report_keeps_exit_code_and_log_tail(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    got = _report(
        tenant,
        run,
        status="FAILURE",
        message="run worker killed by SIGKILL",
        exit_code=-9,
        log_tail=["step 2 of 3", "loading rows"],
    )
    assert got["exit_code"] == -9
    assert got["status_message"].startswith("run worker killed by SIGKILL")
    assert got["status_message"].endswith("step 2 of 3\nloading rows")


def test_terminate(tenant: Tenant) -> None:
    tenant.deploy()
    with tenant.user() as c:
        c.patch(tenant.dep_path, json={"run_concurrency_limit": 1})
    active, queued = tenant.launch()["id"], tenant.launch()["id"]
    tenant.poll()
    with tenant.user() as c:
        # A queued run was never handed to an agent: it is canceled at once.
        assert c.post(f"{tenant.dep_path}/runs/{queued}/terminate").json()["status"] == "CANCELED"
        assert c.post(f"{tenant.dep_path}/runs/{active}/terminate").json()["status"] == "CANCELING"
        assert c.post(f"{tenant.dep_path}/runs/{active}/terminate").status_code == 202
    terminate = [r for r in tenant.poll() if r["type"] == "TERMINATE_RUN"]
    assert [r["payload"]["run_id"] for r in terminate] == [active]
    assert _report(tenant, active, status="CANCELED")["status"] == "CANCELED"
    with tenant.user() as c:
        done = tenant.launch()["id"]
        _report(tenant, done, status="SUCCESS")
        r = c.post(f"{tenant.dep_path}/runs/{done}/terminate")
        assert r.status_code == 409 and "already finished with SUCCESS" in r.json()["detail"]


def test_list_filters_and_pages(tenant: Tenant) -> None:
    tenant.deploy("a")
    tenant.deploy("b")
    ids = [tenant.launch("a", tags={"team": "x" if i % 2 else "y"})["id"] for i in range(6)]
    ids.append(tenant.launch("b", tags={"team": "x"})["id"])
    _report(tenant, ids[0], status="FAILURE")
    with tenant.user() as c:
        base = f"{tenant.dep_path}/runs"
        assert [r["id"] for r in c.get(base, params={"code_location": "b"}).json()["runs"]] == [
            ids[6]
        ]
        assert [r["id"] for r in c.get(base, params={"status": "FAILURE"}).json()["runs"]] == [
            ids[0]
        ]
        team_x = c.get(base, params={"tag": "team=x", "code_location": "a"}).json()["runs"]
        assert [r["id"] for r in team_x] == [ids[5], ids[3], ids[1]]
        pages, cursor = [], None
        while True:
            page = c.get(base, params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
            pages.append([r["id"] for r in page["runs"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == [ids[::-1][0:3], ids[::-1][3:6], ids[::-1][6:7]]
        assert c.get(base, params={"tag": "oops"}).status_code == 422
        assert c.get(base, params={"cursor": "x"}).status_code == 422
        assert c.get(base, params={"status": "NOPE"}).status_code == 422


def test_event_batches_are_idempotent_and_drive_status(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    token = tenant.run_token(run)
    batch = {"events": [event(1, "RUN_START"), event(2, "LOG", "hello", step="s1", level="INFO")]}
    with client(tenant.cp.url, token) as w:
        first = w.post(f"/api/v1/runs/{run}/events", json=batch).json()
        assert first == {"accepted": 2, "duplicates": 0, "run_status": "STARTED"}
        again = w.post(f"/api/v1/runs/{run}/events", json=batch).json()
        assert again == {"accepted": 0, "duplicates": 2, "run_status": "STARTED"}
        overlap = {"events": [event(2, "LOG", "hello"), event(3, "RUN_SUCCESS", "done")]}
        assert w.post(f"/api/v1/runs/{run}/events", json=overlap).json()["accepted"] == 1
        beat = w.post(f"/api/v1/runs/{run}/heartbeat").json()
        assert beat == {"run_status": "SUCCESS", "cancel_requested": False}
    with tenant.user() as c:
        page = c.get(f"{tenant.dep_path}/runs/{run}/events").json()
        assert [e["seq"] for e in page["events"]] == [1, 2, 3]
        assert page["events"][1]["message"] == "hello" and page["run_status"] == "SUCCESS"
        later = c.get(f"{tenant.dep_path}/runs/{run}/events", params={"after": 2}).json()
        assert [e["type"] for e in later["events"]] == ["RUN_SUCCESS"] and later["last_seq"] == 3
    assert tenant.run(run)["status"] == "SUCCESS"


def test_cancel_requested_reaches_the_worker(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    token = tenant.run_token(run)
    with client(tenant.cp.url, token) as w:
        w.post(f"/api/v1/runs/{run}/events", json={"events": [event(1, "RUN_START")]})
        with tenant.user() as c:
            c.post(f"{tenant.dep_path}/runs/{run}/terminate")
        assert w.post(f"/api/v1/runs/{run}/heartbeat").json() == {
            "run_status": "CANCELING",
            "cancel_requested": True,
        }


def test_a_worker_of_a_run_ended_without_it_is_told_to_stop(tenant: Tenant) -> None:
    """Recorded FAILURE by its agent (say, max runtime while the worker's host was lost): a
    worker still heartbeating stops. One that sent its own final event is left alone."""
    tenant.deploy()
    lost, own = tenant.launch()["id"], tenant.launch()["id"]
    tokens = {run: tenant.run_token(run) for run in (lost, own)}
    for run in (lost, own):
        with client(tenant.cp.url, tokens[run]) as w:
            w.post(f"/api/v1/runs/{run}/events", json={"events": [event(1, "RUN_START")]})
    with tenant.agent() as a:
        r = a.post(
            f"/api/v1/agent/runs/{lost}/status",
            json={"status": "FAILURE", "message": "the run exceeded its max runtime"},
        )
        assert r.status_code == 200, r.text
    with client(tenant.cp.url, tokens[lost]) as w:
        beat = w.post(f"/api/v1/runs/{lost}/heartbeat").json()
        assert beat == {"run_status": "FAILURE", "cancel_requested": True}
    with client(tenant.cp.url, tokens[own]) as w:
        w.post(f"/api/v1/runs/{own}/events", json={"events": [event(2, "RUN_FAILURE", "boom")]})
        beat = w.post(f"/api/v1/runs/{own}/heartbeat").json()
        assert beat == {"run_status": "FAILURE", "cancel_requested": False}


def test_live_follow_streams_events_until_the_run_ends(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    token = tenant.run_token(run)
    with client(tenant.cp.url, token) as w:
        w.post(f"/api/v1/runs/{run}/events", json={"events": [event(1, "RUN_START")]})
    received: list[dict[str, Any]] = []
    url = f"{tenant.cp.url}{tenant.dep_path}/runs/{run}/events/stream"
    headers = {"Authorization": f"Bearer {tenant.user_token}"}
    with httpx.stream("GET", url, headers=headers, timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                if kind == "end":
                    break
                received.append(json.loads(line.removeprefix("data: ")))
                if len(received) == 1:
                    # Live part: events posted after the stream opened arrive too.
                    with client(tenant.cp.url, token) as w:
                        w.post(
                            f"/api/v1/runs/{run}/events",
                            json={"events": [event(2, "LOG", "live"), event(3, "RUN_SUCCESS")]},
                        )
    assert [e["seq"] for e in received] == [1, 2, 3]
    assert received[1]["message"] == "live"
    with httpx.stream("GET", url, headers={**headers, "Last-Event-ID": "2"}, timeout=30) as again:
        seqs = [
            json.loads(line[6:])["seq"]
            for line in again.iter_lines()
            if line.startswith("data: ") and '"seq"' in line
        ]
    assert seqs == [3]


def test_live_follow_waits_for_late_events_of_a_run_ended_by_the_agent(tenant: Tenant) -> None:
    """The agent reports FAILURE while the worker still flushes: the stream keeps going for a
    grace period and delivers what arrives late, then ends."""
    tenant.deploy()
    run = tenant.launch()["id"]
    token = tenant.run_token(run)
    with client(tenant.cp.url, token) as w:
        w.post(f"/api/v1/runs/{run}/events", json={"events": [event(1, "RUN_START")]})
    _report(tenant, run, status="FAILURE", message="worker lost")
    url = f"{tenant.cp.url}{tenant.dep_path}/runs/{run}/events/stream"
    seqs: list[int] = []
    with httpx.stream(
        "GET", url, headers={"Authorization": f"Bearer {tenant.user_token}"}, timeout=30
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: ") and '"seq"' in line:
                seqs.append(json.loads(line[6:])["seq"])
                if seqs == [1]:
                    with client(tenant.cp.url, token) as w:
                        w.post(
                            f"/api/v1/runs/{run}/events", json={"events": [event(2, "LOG", "late")]}
                        )
            if line.startswith("event: end"):
                break
    assert seqs == [1, 2]


def test_list_filters_by_job_and_pages(tenant: Tenant) -> None:
    tenant.deploy("a")
    etl = [tenant.launch("a", "etl")["id"] for _ in range(5)]
    other = tenant.launch("a", "refresh_sales")["id"]
    with tenant.user() as c:
        base = f"{tenant.dep_path}/runs"
        only = c.get(base, params={"job": "refresh_sales"}).json()
        assert [r["id"] for r in only["runs"]] == [other] and only["next_cursor"] is None
        pages, cursor = [], None
        while True:
            params = {"job": "etl", "code_location": "a", "limit": 2}
            page = c.get(base, params={**params, **({"cursor": cursor} if cursor else {})}).json()
            pages.append([r["id"] for r in page["runs"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == [etl[::-1][0:2], etl[::-1][2:4], etl[::-1][4:5]]
        assert c.get(base, params={"job": "nope"}).json()["runs"] == []


def test_list_filters_by_creation_time_and_pages(tenant: Tenant) -> None:
    """created_after (inclusive) and created_before (exclusive), with the other filters and
    paging; a run created a little out of step with its pk (another replica's clock) is
    still found; a window that is no window, and a time without a zone, are refused."""
    tenant.deploy("a")
    ids = [tenant.launch("a", "etl")["id"] for _ in range(6)]
    day0 = datetime(2030, 1, 1, tzinfo=UTC)
    created = {run_id: day0 + timedelta(days=i) for i, run_id in enumerate(ids)}
    # The fifth run's replica was 2 minutes behind: created "before" the fourth.
    created[ids[4]] = created[ids[3]] - timedelta(minutes=2)
    db = Database(tenant.cp.database_url)
    try:
        with db.write() as s:
            for run_id, at in created.items():
                s.execute(update(RunRow).where(RunRow.id == run_id).values(created_at=at))
    finally:
        db.dispose()

    def listed(**params: Any) -> list[str]:
        with tenant.user() as c:
            pages, cursor = [], None
            while True:
                extra = {"cursor": cursor} if cursor else {}
                r = c.get(f"{tenant.dep_path}/runs", params={**params, **extra})
                assert r.status_code == 200, r.text
                pages += [run["id"] for run in r.json()["runs"]]
                cursor = r.json()["next_cursor"]
                if cursor is None:
                    return pages

    newest_first = ids[::-1]
    day = lambda n: (day0 + timedelta(days=n)).isoformat()  # noqa: E731
    assert listed(created_after=day(2)) == newest_first[:4]
    assert listed(created_after=day(2), limit=1) == newest_first[:4]
    assert listed(created_before=day(2)) == [ids[1], ids[0]]
    # Days 1 to 3 hold runs 1, 2, 3 and the fifth (a little before day 3 ended).
    assert listed(created_after=day(1), created_before=day(4), limit=2) == [
        ids[4],
        ids[3],
        ids[2],
        ids[1],
    ]
    assert listed(created_after=day(1), created_before=day(4), job="refresh_sales") == []
    assert listed(created_after=day(9)) == []
    assert listed(created_before=day(0)) == []
    with tenant.user() as c:
        r = c.get(
            f"{tenant.dep_path}/runs", params={"created_after": day(3), "created_before": day(1)}
        )
        # A window that holds no time holds no run (the web UI says which bound to move).
        assert r.status_code == 200 and r.json()["runs"] == [], r.text
        r = c.get(f"{tenant.dep_path}/runs", params={"created_after": "2030-01-01T00:00:00"})
        assert r.status_code == 422 and "created_after" in r.text
