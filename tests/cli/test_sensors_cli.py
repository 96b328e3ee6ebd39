"""``tether sensors`` (and the tracebacks of ``tether schedules ticks``), as subprocesses.

Against a real control plane, with the test playing the agent; the tick tables' rarer
contents (many runs, run keys already used, a schedule's config function failing) against a
stub that answers the API's JSON."""

import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.cli.test_user_cli import QUICK, SNAPSHOT, Cli, _argv, _env
from tests.support import Tenant, wait_until

SENSOR = "hourly_sales_refresh"  # declared by the quickstart location
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "sensors.py", line 12, in hourly_sales_refresh\n'
    "    raise ValueError('no sales table')\n"
    "ValueError: no sales table\n"
)


@pytest.fixture
def cli(tenant: Tenant, tmp_path: Path) -> Cli:
    def run(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _argv(args), env=_env(tenant, tmp_path, **env), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    return run


def _sensor_ticks(cli: Cli, *args: str) -> list[dict[str, Any]]:
    r = cli("sensors", "ticks", SENSOR, "--json", *args)
    assert r.returncode == 0, r.stderr
    ticks: list[dict[str, Any]] = json.loads(r.stdout)
    return ticks


def test_sensors_list_on_off_and_a_failed_ticks_traceback(tenant: Tenant, cli: Cli) -> None:
    assert cli("deploy", "quick", *QUICK, "--no-wait").returncode == 0
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={"status": "RUNNING", "snapshot": SNAPSHOT},
        )
        assert r.status_code == 200, r.text
    listed = cli("sensors", "list")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if SENSOR in line]
    for shown in ("quick", "standard", "refresh_sales", "STOPPED", "1 min 00 s"):
        assert shown in row, row
    assert "(set here)" not in row
    assert cli("sensors", "ticks", SENSOR).stderr.strip() == f"sensor {SENSOR} has no ticks"

    on = cli("sensors", "on", SENSOR)
    assert on.returncode == 0, on.stderr
    assert f"sensor {SENSOR} RUNNING" in on.stdout and "next tick" in on.stdout
    [sensor] = [
        s for s in json.loads(cli("sensors", "list", "--json").stdout) if s["name"] == SENSOR
    ]
    assert (sensor["status"], sensor["status_set_by_user"]) == ("RUNNING", True)
    assert "RUNNING (set here)" in cli("sensors", "list").stdout

    # Turned on, it is due at once: the control plane starts a tick for an agent, which
    # this test plays, reporting that the sensor's function raised.
    [tick] = wait_until(lambda: _sensor_ticks(cli), timeout=15, what="the first tick")
    assert tick["status"] == "EVALUATING"
    report = {
        "response": {"error": {"message": "ValueError: no sales table", "traceback": TRACEBACK}},
        "workflow_id": "tick-workflow-1",
    }
    with tenant.agent() as agent:
        r = agent.post(f"/api/v1/agent/ticks/sensor/{tick['id']}", json=report)
        assert r.status_code == 200, r.text
    listed = cli("sensors", "list")
    assert "FAILURE ValueError: no sales table" in listed.stdout
    table = cli("sensors", "ticks", SENSOR)
    assert table.returncode == 0, table.stderr
    [failed] = [line for line in table.stdout.splitlines() if "FAILURE" in line]
    assert "ValueError: no sales table" in failed and "Traceback" not in table.stdout
    assert "add --traceback" in table.stderr
    shown = cli("sensors", "ticks", SENSOR, "--traceback")
    assert TRACEBACK.strip() in shown.stdout
    [as_json] = _sensor_ticks(cli, "--status", "FAILURE")
    assert as_json["traceback"] == TRACEBACK and as_json["workflow_id"] == "tick-workflow-1"
    assert _sensor_ticks(cli, "--status", "SUCCESS") == []

    off = cli("sensors", "off", SENSOR, "--location", "quick")
    assert off.returncode == 0 and "STOPPED" in off.stdout and "next tick" not in off.stdout
    missing = cli("sensors", "on", "nope")
    assert missing.returncode == 1 and "tether sensors list" in missing.stderr
    elsewhere = cli("sensors", "on", SENSOR, "--location", "other")
    assert elsewhere.returncode == 1 and f"no sensor {SENSOR!r} in 'other'" in elsewhere.stderr


# --- tick tables, against a stub of the API ---------------------------------------------

BASE = "/api/v1/deployments/prod"
RUNS = [f"run-{i}" for i in range(7)]


def _tick(id_: int, status: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "status": status, "tick_time": f"2026-01-01T0{id_}:00:00Z", **extra}


def _sensor(location: str, **extra: Any) -> dict[str, Any]:
    return {
        "code_location": location, "name": SENSOR, "kind": "standard", "job": "refresh_sales",
        "minimum_interval_seconds": 60, "timeout_seconds": 30, "status": "RUNNING",
        "default_status": "STOPPED", "status_set_by_user": True, "present": True, **extra,
    }  # fmt: skip


FAILED = _tick(4, "FAILURE", error="ValueError: no sales table", traceback=TRACEBACK)
CREATED = _tick(3, "SUCCESS", run_ids=RUNS, run_keys_skipped=["2026-01-01", "2026-01-02"])
SKIPPED = _tick(2, "SKIPPED", skip_reason="no new sales\nsince the last tick")
SENSOR_TICKS = [_tick(5, "EVALUATING"), FAILED, CREATED, SKIPPED]
SCHEDULE = {
    "code_location": "quick", "name": "nightly_etl", "cron": "0 3 * * *", "timezone": "UTC",
    "job": "etl", "run_config": {}, "tags": {}, "status": "RUNNING", "default_status": "RUNNING",
    "status_set_by_user": False, "missed_ticks": "latest", "present": True,
}  # fmt: skip
SCHEDULE_TICKS = [
    {"tick_time": "2026-01-01T03:00:00Z", "status": "FAILURE", "error": "KeyError: 'day'",
     "traceback": "Traceback (most recent call last):\nKeyError: 'day'\n",
     "created_at": "2026-01-01T03:00:01Z"},
]  # fmt: skip


class Stub(ThreadingHTTPServer):
    """Answers ``routes[(method, path)]`` as JSON (404 otherwise) and keeps each request's
    method and path with its query."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Stub

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        found = self.server.routes.get((self.command, urlsplit(self.path).path))
        status = 200 if found is not None else 404
        body = json.dumps(found if found is not None else {"detail": f"not stubbed: {self.path}"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output to the test's own


@pytest.fixture
def stub() -> Iterator[Stub]:
    routes: dict[tuple[str, str], Any] = {
        ("GET", f"{BASE}/sensors"): [
            _sensor("quick", last_tick=CREATED),
            _sensor("other", status="STOPPED", status_set_by_user=False),
        ],
        ("GET", f"{BASE}/sensors/quick/{SENSOR}/ticks"): SENSOR_TICKS,
        ("GET", f"{BASE}/schedules"): [SCHEDULE],
        ("GET", f"{BASE}/schedules/quick/nightly_etl/ticks"): SCHEDULE_TICKS,
    }
    server = Stub(routes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


StubCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def stub_cli(stub: Stub, tmp_path: Path) -> StubCli:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = _env_for(stub.url, tmp_path)
        return subprocess.run(_argv(args), env=env, capture_output=True, text=True, timeout=60)

    return run


def _env_for(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.update(
        TETHER_URL=url, TETHER_TOKEN="tether_user_stub", TETHER_DEPLOYMENT="prod",
        TETHER_HOME=str(home), COLUMNS="200", NO_COLOR="1",
    )  # fmt: skip
    return env


def test_sensors_list_shows_the_last_tick_and_needs_a_location_for_a_shared_name(
    stub: Stub, stub_cli: StubCli
) -> None:
    listed = stub_cli("sensors", "list")
    assert listed.returncode == 0, listed.stderr
    [quick] = [line for line in listed.stdout.splitlines() if "SUCCESS" in line]
    assert "quick" in quick and "RUNNING (set here)" in quick
    assert "SUCCESS 7 runs; 2 run keys already used" in quick
    ambiguous = stub_cli("sensors", "ticks", SENSOR)
    assert ambiguous.returncode == 1
    assert "declared by quick, other: pick one with --location" in ambiguous.stderr


def test_sensor_ticks_show_runs_keys_reasons_and_tracebacks(stub: Stub, stub_cli: StubCli) -> None:
    r = stub_cli("sensors", "ticks", SENSOR, "--location", "quick")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("EVALUATING" in line for line in lines)
    [failed] = [line for line in lines if "FAILURE" in line]
    assert "ValueError: no sales table" in failed
    [created] = [line for line in lines if "SUCCESS" in line]
    assert "run-0" in created and "2026-01-01" in created
    # A tick that asked for many runs names a few: --json has them all.
    assert all(f"run-{i}" in r.stdout for i in range(5)) and "run-5" not in r.stdout
    assert "and 2 more (--json lists all)" in r.stdout
    assert "2026-01-02" in r.stdout
    [skipped] = [line for line in lines if "SKIPPED" in line]
    assert "no new sales" in skipped and "since the last tick" not in r.stdout
    # The traceback only on demand; the hint says how.
    assert "Traceback" not in r.stdout
    assert "add --traceback" in r.stderr and "1 failed tick" in r.stderr

    shown = stub_cli("sensors", "ticks", SENSOR, "--location", "quick", "--traceback")
    assert shown.returncode == 0, shown.stderr
    assert TRACEBACK.strip() in shown.stdout
    assert re.search(r"^tick [0-9: -]+: ValueError: no sales table$", shown.stdout, re.M)
    assert "add --traceback" not in shown.stderr

    as_json = stub_cli("sensors", "ticks", SENSOR, "--location", "quick", "--json")
    assert json.loads(as_json.stdout)[2]["run_ids"] == RUNS

    failures = stub_cli("sensors", "ticks", SENSOR, "--location", "quick", "--status",
                        "FAILURE", "--limit", "5")  # fmt: skip
    assert failures.returncode == 0, failures.stderr
    asked = [s for s in stub.seen if s.startswith(f"GET {BASE}/sensors/quick/")][-1]
    assert "status=FAILURE" in asked and "limit=5" in asked


def test_schedule_ticks_print_a_failed_ticks_traceback(stub_cli: StubCli) -> None:
    r = stub_cli("schedules", "ticks", "nightly_etl")
    assert r.returncode == 0, r.stderr
    assert "KeyError: 'day'" in r.stdout and "Traceback" not in r.stdout
    assert "add --traceback" in r.stderr
    shown = stub_cli("schedules", "ticks", "nightly_etl", "--traceback")
    assert "Traceback (most recent call last):\nKeyError: 'day'" in shown.stdout
