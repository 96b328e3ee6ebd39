"""Three control-plane replicas on one PostgreSQL behind a real haproxy, run with the
repository's own configuration (deploy/haproxy/haproxy.cfg), a real agent and real run
workers talking to the balancer.

The replicas are started together (their migrations must not run into each other); a sign-in
made on one works on the others; a log fetch (forwarding 'local') waiting on one replica is
answered when the agent's answer lands on another; and one replica is SIGKILLed while runs
launch, a run streams events, a schedule ticks and a backfill launches: no run is lost or
doubled, no event lost, no tick doubled, and the clients' retries hide the death.
"""

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    events,
    stop_launched,
    wait_for_location,
    wait_for_run,
    worker_starts,
)
from tests.conftest import POSTGRES_URL
from tests.controlplane.test_ui_security import PAGE
from tests.e2e.test_backfill import all_pages
from tests.support import (
    REPO,
    ControlPlane,
    Tenant,
    client,
    drop_postgres_database,
    free_port,
    fresh_postgres_database,
    stop_process,
    wait_until,
)
from tether_api.enums import TERMINAL_RUN_STATUSES
from tether_api.runtags import BACKFILL_TAG, TETHER_PARTITION_TAG
from tether_controlplane.db import Database
from tether_controlplane.services.logfetch import WAITING_REPLICA
from tether_controlplane.tables import (
    DeploymentRow,
    Organization,
    RequestRow,
    ScheduleRow,
    utcnow,
)
from tether_controlplane.ui.session import COOKIE
from tether_sdk.examples.quickstart import defs as quickstart

HAPROXY_CFG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
LOCATION = Path(__file__).parent / "locations" / "replicas.py"
REPLICAS = 3


def haproxy_path() -> str:
    found = os.environ.get("TETHER_TEST_HAPROXY") or shutil.which("haproxy")
    if found is None and os.access("/usr/sbin/haproxy", os.X_OK):
        found = "/usr/sbin/haproxy"  # not on a non-root PATH
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no haproxy: scripts/test.sh installs it (scripts/setup-haproxy.sh)")
        pytest.skip("no haproxy: run scripts/setup-haproxy.sh (root on Debian)")
    return found


class Balancer:
    """haproxy with deploy/haproxy/haproxy.cfg as it is, its addresses from the environment."""

    def __init__(self, workdir: Path, replicas: list[ControlPlane]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TETHER_LB_BIND": f"127.0.0.1:{self.port}",
            **{f"TETHER_REPLICA_{i}": f"127.0.0.1:{cp.port}" for i, cp in enumerate(replicas, 1)},
        }
        self.log_path = workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Balancer":
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [haproxy_path(), "-db", "-f", str(HAPROXY_CFG)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout=15, what=f"haproxy on {self.url}")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


@dataclass
class Cluster:
    replicas: list[ControlPlane]
    front: ControlPlane  # the balancer, as clients see it: its URL, the shared database
    balancer: Balancer
    tenant: Tenant  # an organization with a real agent, through the balancer
    agent: AgentProcess
    db: Database


def start_together(replicas: list[ControlPlane]) -> None:
    """Start every replica at once, as an orchestrator rolling out a release would: each
    migrates the database on start."""
    failures: list[BaseException] = []

    def start(cp: ControlPlane) -> None:
        try:
            cp.start()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(cp,)) for cp in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: TemporalDevServer
) -> Iterator[Cluster]:
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL not configured: set TETHER_TEST_POSTGRES_URL (scripts/test.sh does)"
        )
    haproxy_path()
    workdir = tmp_path_factory.mktemp("replicas")
    url = fresh_postgres_database(POSTGRES_URL)
    replicas: list[ControlPlane] = []
    for i in range(1, REPLICAS + 1):
        (workdir / f"cp{i}").mkdir()
        cp = ControlPlane(
            workdir / f"cp{i}",
            database_url=url,
            run_start_timeout_seconds=3600,
            run_heartbeat_timeout_seconds=3600,
            # A claim whose answer died with a replica comes back to the agent this soon.
            request_lease_seconds=5,
        )
        cp.settings["replica_url"] = cp.url
        replicas.append(cp)
    balancer = Balancer(workdir, replicas)
    db = Database(url)
    agent: AgentProcess | None = None
    try:
        start_together(replicas)
        balancer.start()
        front = ControlPlane(workdir, database_url=url)
        front.port, front.url = balancer.port, balancer.url
        tenant = front.tenant(concurrency=20)
        agent = AgentProcess(tenant, temporal_server, workdir).start()
        tenant.deploy("replicas", python_file=str(LOCATION))
        assert wait_for_location(tenant, "replicas")["status"] == "RUNNING"
        yield Cluster(replicas, front, balancer, tenant, agent, db)
    finally:
        if agent is not None:
            # Nothing of its is looked at afterwards: no graceful stop (seconds of CI).
            agent.kill()
            stop_launched(agent.state_dir)
        balancer.stop()
        # Together: each may hold long-polls for its 2 s of graceful shutdown.
        stopping = [threading.Thread(target=cp.stop) for cp in replicas]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        db.dispose()
        drop_postgres_database(POSTGRES_URL, url)


def on(cp: ControlPlane, token: str) -> httpx.Client:
    """A client of one replica, bypassing the balancer."""
    return client(cp.url, token)


def test_a_sign_in_made_on_one_replica_works_on_the_others(cluster: Cluster) -> None:
    tenant = cluster.tenant
    first, *others = cluster.replicas
    with httpx.Client(base_url=first.url, headers=PAGE) as web:
        r = web.post("/sign-in", data={"token": tenant.user_token, "next": "/"})
        assert r.status_code == 303, r.text
        cookie = f"{COOKIE}={web.cookies[COOKIE]}"
    for cp in others:
        with httpx.Client(base_url=cp.url, headers={**PAGE, "Cookie": cookie}) as web:
            r = web.get(f"/d/{tenant.deployment}/runs")
            assert r.status_code == 200, (cp.url, r.status_code, r.headers.get("location"))
            assert "Runs" in r.text


@dataclass
class Fetch:
    """A user's GET .../logs held on one replica, in a thread."""

    cp: ControlPlane
    tenant: Tenant
    run_id: str
    response: httpx.Response | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._get)
        self.thread.start()

    def _get(self) -> None:
        with on(self.cp, self.tenant.user_token) as c:
            self.response = c.get(
                f"{self.tenant.dep_path}/runs/{self.run_id}/logs",
                params={"wait_seconds": 20},
                timeout=40,
            )

    def result(self) -> dict[str, Any]:
        self.thread.join(40)
        assert self.response is not None and self.response.status_code == 200, self.response
        return self.response.json()  # type: ignore[no-any-return]


def claim_fetch(cp: ControlPlane, tenant: Tenant) -> dict[str, Any]:
    """Poll ``cp`` as an agent until it hands out the FETCH_RUN_LOGS request."""

    def fetches() -> list[dict[str, Any]]:
        with on(cp, tenant.agent_token) as c:
            r = c.post(
                "/api/v1/agent/requests/poll",
                json={"agent_name": "agent-far", "wait_seconds": 2},
            )
            assert r.status_code == 200, r.text
            return [q for q in r.json()["requests"] if q["type"] == "FETCH_RUN_LOGS"]

    found: list[dict[str, Any]] = wait_until(fetches, timeout=15, what="the fetch request")
    return found[0]


def test_a_log_fetch_waiting_on_one_replica_gets_the_answer_another_replica_received(
    cluster: Cluster,
) -> None:
    # An organization of its own with no agent: the test answers as the agent, on the replica
    # it chooses. (The real agent's fetches are in the kill test below.)
    tenant = cluster.front.tenant()
    tenant.report_running("quick", quickstart.snapshot().model_dump(mode="json"))
    with tenant.user() as c:
        r = c.patch(tenant.dep_path, json={"log_settings": {"forwarding": "local"}})
        assert r.status_code == 200, r.text
    run_id = tenant.launch("quick", "etl", run_config={"source": "s3://orders"})["id"]
    waiting, polled, answered = cluster.replicas

    fetch = Fetch(waiting, tenant, run_id)
    request = claim_fetch(polled, tenant)
    # The agent is never shown which replica waits.
    assert request["payload"] == {"run_id": run_id, "agent": None}
    with on(answered, tenant.agent_token) as c:
        r = c.post(
            f"/api/v1/agent/requests/{request['id']}/run-logs",
            json={"agent_name": "agent-far", "text": "hello from the agent's host\n"},
        )
        assert r.status_code == 200, r.text
    logs = fetch.result()
    assert (logs["source"], logs["text"], logs["agent"]) == (
        "agent",
        "hello from the agent's host\n",
        "agent-far",
    )
    # What the database kept of it: the waiting replica's URL, never the text.
    with cluster.db.read() as s:
        row = s.get(RequestRow, int(request["id"]))
        assert row is not None
        assert row.payload == {"run_id": run_id, "agent": None, WAITING_REPLICA: waiting.url}
        assert row.status == "DONE"

    # An agent that cannot read the output fails the request on another replica: the user
    # waiting on the first reads why.
    fetch = Fetch(waiting, tenant, run_id)
    request = claim_fetch(polled, tenant)
    with on(answered, tenant.agent_token) as c:
        r = c.post(
            f"/api/v1/agent/requests/{request['id']}/fail",
            json={
                "error": "run output not found on agent-far",
                "retry": False,
                "attempt": request["attempt"],
            },
        )
        assert r.status_code == 200, r.text
    logs = fetch.result()
    assert (logs["source"], logs["message"]) == ("none", "run output not found on agent-far")


# --- a replica SIGKILLed under load -------------------------------------------------------

LAUNCHES = 24
BACKFILL_DAYS = ("2024-03-01", "2024-03-12")  # 12 partitions
STREAM_LINES = 60


@dataclass
class Launcher:
    """A user's script launching runs through the balancer with idempotency keys, retrying
    what the balancer could not hide (a POST on a replica that died answers 502)."""

    tenant: Tenant
    run_ids: dict[int, str] = field(default_factory=dict)
    retries: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.tenant.user() as c:
                for i in range(LAUNCHES):
                    self.run_ids[i] = self._launch(c, i)
                    time.sleep(0.2)
        except BaseException as exc:
            self.error = exc

    def _launch(self, c: httpx.Client, i: int) -> str:
        body = {
            "code_location": "replicas",
            "job": "quick",
            "tags": {"load": str(i)},
            "idempotency_key": f"load-{i}",
        }
        deadline = time.monotonic() + 20
        while True:
            try:
                r = c.post(f"{self.tenant.dep_path}/runs", json=body, timeout=10)
                if r.status_code in (200, 201):
                    return str(r.json()["id"])
                assert r.status_code >= 500, r.text
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"launch {i} kept failing"
            self.retries += 1
            time.sleep(0.2)


def move_schedule_cursor(cluster: Cluster, back: timedelta) -> None:
    """Make the minutely schedule's ticks of the last ``back`` due at once (it runs missed
    ticks): every replica's scheduler sees them on its next pass."""
    tenant = cluster.tenant
    with cluster.db.write() as s:
        dep_id = s.scalar(
            select(DeploymentRow.id)
            .join(Organization, DeploymentRow.organization_id == Organization.id)
            .where(Organization.name == tenant.org, DeploymentRow.name == tenant.deployment)
        )
        changed = s.execute(
            update(ScheduleRow)
            .where(ScheduleRow.deployment_id == dep_id, ScheduleRow.name == "minutely")
            .values(cursor=utcnow() - back)
        ).rowcount  # type: ignore[attr-defined]
    assert changed == 1


def open_connections(cp: ControlPlane) -> int:
    """How many TCP connections to ``cp``'s port are established now (from the balancer: its
    agent long-polls, event posts and streams in flight), as ``ss`` would count them."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "01" and int(local.split(":")[1], 16) == cp.port:
            count += 1
    return count


def test_a_replica_killed_under_load_loses_and_doubles_nothing(cluster: Cluster) -> None:
    tenant, agent = cluster.tenant, cluster.agent

    # The load, all through the balancer: a run streaming numbered LOG events, a user
    # launching runs, a backfill, and a schedule with eight ticks due.
    stream = tenant.launch("replicas", "stream", run_config={"lines": STREAM_LINES, "pause": 0.1})
    launcher = Launcher(tenant)
    launching = threading.Thread(target=launcher.run)
    launching.start()
    with tenant.user() as c:
        r = c.post(
            f"{tenant.dep_path}/backfills",
            json={"code_location": "replicas", "job": "daily", "partition_range": BACKFILL_DAYS},
        )
        assert r.status_code == 201, r.text
        backfill_id = r.json()["id"]
    move_schedule_cursor(cluster, timedelta(minutes=8))

    # Mid-stream, the busiest replica dies without any cleanup; more ticks fall due right
    # after.
    wait_until(
        lambda: len(events(tenant, stream["id"])) >= 15, timeout=30, what="the stream under way"
    )
    victim = max(cluster.replicas, key=open_connections)
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    victim.proc = None
    move_schedule_cursor(cluster, timedelta(minutes=16))

    launching.join(60)
    assert launcher.error is None, launcher.error
    assert len(launcher.run_ids) == LAUNCHES

    def backfill_ended() -> dict[str, Any] | None:
        with tenant.user() as c:
            found: dict[str, Any] = c.get(f"{tenant.dep_path}/backfills/{backfill_id}").json()
        return found if found["status"] not in ("REQUESTED", "RUNNING") else None

    backfill = wait_until(backfill_ended, timeout=60, interval=0.3, what="the backfill to end")

    def all_ended() -> list[dict[str, Any]] | None:
        runs = all_pages(tenant, f"{tenant.dep_path}/runs", "runs", limit=100)
        return runs if all(run["status"] in TERMINAL_RUN_STATUSES for run in runs) else None

    runs = wait_until(all_ended, timeout=60, interval=0.3, what="every run to end")

    # Every run succeeded, and its worker was started once.
    assert Counter(run["status"] for run in runs) == {"SUCCESS": len(runs)}
    doubled = [run["id"] for run in runs if worker_starts(agent.state_dir, run["id"]) != 1]
    assert not doubled, doubled

    # The user's launches: one run each, whatever the retries.
    launched = Counter(run["tags"]["load"] for run in runs if "load" in run["tags"])
    assert launched == {str(i): 1 for i in range(LAUNCHES)}
    assert {run["id"] for run in runs if "load" in run["tags"]} == set(launcher.run_ids.values())

    # The stream: every event once, in order.
    seen = events(tenant, stream["id"])
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    lines = [e["message"] for e in seen if e["type"] == "LOG" and e["message"].startswith("line")]
    assert lines == [f"line {i} of {STREAM_LINES}" for i in range(1, STREAM_LINES + 1)]
    assert seen[-1]["type"] == "RUN_SUCCESS"

    # The backfill: one run per partition.
    assert backfill["status"] == "COMPLETED", backfill
    assert backfill["counts"]["success"] == 12, backfill
    per_partition = Counter(
        run["tags"][TETHER_PARTITION_TAG]
        for run in runs
        if run["tags"].get(BACKFILL_TAG) == backfill_id
    )
    assert len(per_partition) == 12 and set(per_partition.values()) == {1}, per_partition

    # The schedule: each minute of the last 16 ticked once, each tick one run.
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/schedules/replicas/minutely/ticks", params={"limit": 200})
        assert r.status_code == 200, r.text
        ticks = r.json()
    times = sorted(datetime.fromisoformat(tick["tick_time"]) for tick in ticks)
    assert len(times) == len(set(times)) >= 16, times
    assert {later - earlier for earlier, later in pairwise(times)} == {timedelta(minutes=1)}
    assert {tick["status"] for tick in ticks} == {"SUCCESS"}, ticks
    scheduled = {run["id"] for run in runs if run["tags"].get("tether/schedule") == "minutely"}
    assert scheduled == {tick["run_id"] for tick in ticks}
    assert len(scheduled) == len(ticks)

    # Nothing above needed a person: the balancer left the dead replica, and the clients'
    # retries (a launch's at most a few) hid it.
    assert launcher.retries <= 5, launcher.retries
    with httpx.Client(base_url=cluster.balancer.url) as c:
        assert c.get("/healthz").status_code == 200

    # A log fetch with the real agent: the user's call held on each live replica in turn,
    # the agent answering on whichever replica the balancer picks.
    with tenant.user() as c:
        r = c.patch(tenant.dep_path, json={"log_settings": {"forwarding": "local"}})
        assert r.status_code == 200, r.text
    short = tenant.launch("replicas", "stream", run_config={"lines": 3, "pause": 0})
    wait_for_run(tenant, short["id"])
    for cp in cluster.replicas:
        if cp is victim:
            continue
        logs = Fetch(cp, tenant, short["id"]).result()
        assert logs["source"] == "agent", logs
        assert "line 3 of 3" in logs["text"], logs
