"""Log forwarding modes, error redaction and secret masking, end to end: a real agent launches
real run workers against a real control plane, and the control plane's database is read
afterwards for what reached it and what did not.

Each test writes its own job file with markers unique to it (the control plane and its
database are shared by the session's tests), and passes a secret through the agent's
environment (passthrough_env: the value never reaches the control plane, only the name).
"""

import os
import re
import signal
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    events,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.controlplane.test_ui_security import signed_in
from tests.support import Tenant, cli, command_pid, database_text, wait_until

JOBS = """
import logging
import os
import sys
import time

from tether_sdk import Definitions, job, step


@step
def talk() -> int:
    print("OUT-{m}")
    print("ERR-{m}", file=sys.stderr)
    logging.getLogger("user.code").warning("LOG-{m}")
    print("the secret is " + os.environ["LOGTEST_SECRET"])
    return 1


@step
def boom() -> None:
    raise ValueError("BOOM-{m} with " + os.environ["LOGTEST_SECRET"])


@step
def linger() -> None:
    print("LINGER-{m} " + os.environ["LOGTEST_SECRET"], flush=True)
    time.sleep(60)


defs = Definitions(
    jobs=[
        job("talks", steps=[talk]),
        job("fails", steps=[talk, boom]),
        job("lingers", steps=[linger]),
    ]
)
"""


class Case:
    def __init__(self, tenant: Tenant, agent: AgentProcess, tmp_path: Path) -> None:
        self.tenant = tenant
        self.agent = agent
        self.marker = uuid.uuid4().hex[:12]
        self.secret = agent.env["LOGTEST_SECRET"]
        self.code = tmp_path / f"logjobs_{self.marker}.py"
        self.code.write_text(textwrap.dedent(JOBS.format(m=self.marker)))

    def deploy(self, name: str = "logs", **spec: Any) -> dict[str, Any]:
        self.tenant.deploy(
            name, python_file=str(self.code), passthrough_env=["LOGTEST_SECRET"], **spec
        )
        loc = wait_for_location(self.tenant, name)
        assert loc["status"] == "RUNNING", loc
        return loc

    def run(self, job: str, location: str = "logs") -> dict[str, Any]:
        run = self.tenant.launch(location, job)
        return wait_for_run(self.tenant, run["id"])

    def output(self, run_id: str) -> str:
        """The run's output.log on the agent's host (the user's environment)."""
        handle = ProcessLauncher(self.agent.state_dir).find(f"run:{run_id}", include_exited=True)
        assert handle is not None and handle.log_path is not None
        return Path(handle.log_path).read_text(errors="replace")

    def database_text(self) -> str:
        return database_text(self.tenant)

    def set_deployment(self, **settings: Any) -> dict[str, Any]:
        with self.tenant.user() as c:
            r = c.patch(self.tenant.dep_path, json={"log_settings": settings})
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def case(e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path) -> Iterator[Case]:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    agent = AgentProcess(e2e_tenant, temporal_server, tmp_path, LOGTEST_SECRET=secret).start()
    try:
        yield Case(e2e_tenant, agent, tmp_path)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


def types(run_id: str, tenant: Tenant) -> list[str]:
    return [e["type"] for e in events(tenant, run_id)]


def test_all_forwards_output_and_log_records_with_secrets_masked(case: Case) -> None:
    case.deploy()
    run = case.run("fails")
    assert run["status"] == "FAILURE", run
    assert run["log_settings"]["forwarding"] == "all"
    seen = events(case.tenant, run["id"])
    logs = {e["message"] for e in seen if e["type"] == "LOG"}
    m = case.marker
    assert {f"OUT-{m}", f"ERR-{m}", f"LOG-{m}"} <= logs, logs
    assert "the secret is <masked:LOGTEST_SECRET>" in logs, logs
    failure = next(e for e in seen if e["type"] == "STEP_FAILURE")
    assert f"BOOM-{m} with <masked:LOGTEST_SECRET>" in failure["message"]
    assert "<masked:LOGTEST_SECRET>" in failure["data"]["traceback"]
    text = case.database_text()
    assert f"OUT-{m}" in text and f"BOOM-{m}" in text
    assert case.secret not in text
    # At home, the output is as the job wrote it.
    assert f"the secret is {case.secret}" in case.output(run["id"])


def test_structured_sends_lifecycle_events_and_no_log_text(case: Case) -> None:
    done = cli(case.tenant, "deployment", "set-logs", "--forwarding", "structured")
    assert done.returncode == 0, done.stderr
    assert re.search(r"log forwarding +structured\n", done.stdout), done.stdout
    with case.tenant.user() as c:
        settings = c.get(case.tenant.dep_path).json()["log_settings"]
    assert settings == {"forwarding": "structured", "store_url": None, "redact_errors": False}
    refused = cli(case.tenant, "deployment", "set-logs", "--store-url", "s3://bucket/logs")
    assert refused.returncode != 0 and "file:///" in refused.stderr, refused.stderr
    # An option left out stays as it is: turning redaction on does not loosen forwarding.
    merged = cli(case.tenant, "deployment", "set-logs", "--redact-errors")
    assert merged.returncode == 0, merged.stderr
    with case.tenant.user() as c:
        settings = c.get(case.tenant.dep_path).json()["log_settings"]
    assert settings == {"forwarding": "structured", "store_url": None, "redact_errors": True}
    case.deploy()
    run = case.run("talks")
    assert run["status"] == "SUCCESS", run
    assert run["log_settings"]["forwarding"] == "structured"
    assert types(run["id"], case.tenant) == [
        "RUN_START",
        "STEP_START",
        "STEP_SUCCESS",
        "RUN_SUCCESS",
    ]
    text = case.database_text()
    m = case.marker
    for absent in (f"OUT-{m}", f"ERR-{m}", f"LOG-{m}", case.secret):
        assert absent not in text, absent
    with signed_in(case.tenant) as web:
        page = web.get(f"/d/prod/runs/{run['id']}").text
        assert 'data-forwarding="structured"' in page and "only run and step events" in page
    # The text stayed in the user's environment: stdout, stderr and the logging record.
    output = case.output(run["id"])
    for present in (f"OUT-{m}", f"ERR-{m}", f"WARNING user.code: LOG-{m}"):
        assert present in output, present


def test_a_cold_started_worker_follows_the_settings_too(case: Case) -> None:
    """Warm runs (the default) fork from the code server; a cold one is a new interpreter
    that reads its settings from its own environment."""
    case.deploy("cold", launch="cold", logs={"forwarding": "structured", "redact_errors": True})
    run = case.run("fails", location="cold")
    assert run["status"] == "FAILURE", run
    seen = events(case.tenant, run["id"])
    assert seen[0]["data"]["launch"] == "cold"
    assert "LOG" not in {e["type"] for e in seen}
    failure = next(e for e in seen if e["type"] == "STEP_FAILURE")
    assert "error_id" in failure["data"]
    text = case.database_text()
    assert f"OUT-{case.marker}" not in text and f"BOOM-{case.marker}" not in text
    assert f"OUT-{case.marker}" in case.output(run["id"])


def test_a_location_overrides_the_deployment_and_errors_are_redacted(case: Case) -> None:
    # The deployment forwards everything; this location keeps text home and redacts.
    case.deploy(logs={"forwarding": "structured", "redact_errors": True})
    run = case.run("fails")
    assert run["status"] == "FAILURE", run
    assert run["log_settings"] == {
        "forwarding": "structured",
        "store_url": None,
        "redact_errors": True,
    }
    seen = events(case.tenant, run["id"])
    assert "LOG" not in {e["type"] for e in seen}
    failure = next(e for e in seen if e["type"] == "STEP_FAILURE")
    error_id = failure["data"]["error_id"]
    assert error_id.startswith("err-")
    assert failure["data"]["error_class"] == "ValueError"
    assert failure["data"]["redacted"] is True
    assert "traceback" not in failure["data"] and "error" not in failure["data"]
    assert failure["message"].startswith("step 'boom' failed: ValueError (error ID err-")
    text = case.database_text()
    m = case.marker
    assert f"BOOM-{m}" not in text and case.secret not in text and f"OUT-{m}" not in text
    assert error_id in text
    # The full text is in the run's output, under that ID (secrets masked there too).
    output = case.output(run["id"])
    block = output[output.index(f"tether: error {error_id} (ValueError)") :]
    assert f"BOOM-{m} with <masked:LOGTEST_SECRET>" in block
    assert "Traceback (most recent call last)" in block
    assert f"tether: end of error {error_id}" in block


def test_redaction_with_everything_forwarded_keeps_the_log_lines(case: Case) -> None:
    case.deploy(logs={"redact_errors": True})
    run = case.run("fails")
    assert run["status"] == "FAILURE", run
    seen = events(case.tenant, run["id"])
    assert f"OUT-{case.marker}" in {e["message"] for e in seen if e["type"] == "LOG"}
    failure = next(e for e in seen if e["type"] == "STEP_FAILURE")
    assert "error_id" in failure["data"]
    text = case.database_text()
    assert f"BOOM-{case.marker}" not in text
    assert "steps failed: boom" in run["status_message"]


def test_a_failure_log_tail_is_masked_and_obeys_the_mode(case: Case) -> None:
    case.deploy()
    run = case.tenant.launch("logs", "lingers")
    wait_until(lambda: f"LINGER-{case.marker}" in _output_or_empty(case, run["id"]))
    _kill_worker(case, run["id"])
    done = wait_for_run(case.tenant, run["id"])
    assert done["status"] == "FAILURE", done
    # The tail reached the control plane (everything is forwarded), masked.
    assert f"LINGER-{case.marker} <masked:LOGTEST_SECRET>" in done["status_message"], done
    assert case.secret not in case.database_text()

    # Kept home: the same crash sends no tail at all.
    case.deploy("home", logs={"forwarding": "structured"})
    run = case.tenant.launch("home", "lingers")
    wait_until(lambda: f"LINGER-{case.marker}" in _output_or_empty(case, run["id"]))
    _kill_worker(case, run["id"])
    done = wait_for_run(case.tenant, run["id"])
    assert done["status"] == "FAILURE", done
    assert "last log lines" not in done["status_message"], done
    assert "killed by signal 9" in done["status_message"], done


def test_a_load_error_is_redacted_for_the_control_plane(case: Case, tmp_path: Path) -> None:
    broken = tmp_path / f"broken_{case.marker}.py"
    broken.write_text(f"raise RuntimeError('LOADFAIL-{case.marker}')\n")
    case.tenant.deploy("broken", python_file=str(broken), logs={"redact_errors": True})
    loc = wait_for_location(case.tenant, "broken")
    assert loc["status"] == "ERROR", loc
    message = loc["error"]["message"]
    assert "RuntimeError (error ID err-" in message, message
    assert loc["error"]["log_tail"] == []
    error_id = message.split("error ID ")[1].split(";")[0]
    assert f"LOADFAIL-{case.marker}" not in database_text(case.tenant)
    # The agent's log holds the text under the ID.
    wait_until(lambda: error_id in case.agent.log())
    log = case.agent.log()
    assert f"LOADFAIL-{case.marker}" in log[log.index(error_id) :]


def test_the_control_plane_drops_log_text_a_worker_sends_anyway(case: Case) -> None:
    """An old or misconfigured worker that sends LOG events and unredacted failures for a
    run whose settings forbid them: the control plane stores neither."""
    case.set_deployment(forwarding="structured", redact_errors=True)
    tenant = case.tenant
    # Served by no agent: the test plays the agent's part, and the worker's.
    tenant.deploy("orphan", python_file=str(case.code), agent_queue="nobody")
    run_id = tenant.launch("orphan", "talks")["id"]
    with tenant.agent() as c:
        launch = c.post(f"/api/v1/agent/runs/{run_id}/launch").json()
    assert launch["run"]["log_settings"]["forwarding"] == "structured", launch
    token = launch["token"]
    leaked = f"LEAK-{case.marker}"
    body = {
        "events": [
            _event(1, "RUN_START"),
            _event(2, "LOG", leaked),
            _event(
                3,
                "STEP_FAILURE",
                f"step 'talk' failed: ValueError: {leaked}",
                step="talk",
                data={"error": f"ValueError: {leaked}", "traceback": leaked},
            ),
            _event(4, "RUN_FAILURE", f"run worker error: {leaked}", data={"traceback": leaked}),
        ]
    }
    with httpx.Client(base_url=tenant.cp.url, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post(f"/api/v1/runs/{run_id}/events", json=body)
        assert r.status_code == 200, r.text
    seen = events(tenant, run_id)
    assert [e["type"] for e in seen] == ["RUN_START", "STEP_FAILURE", "RUN_FAILURE"]
    assert all(e["data"] == {"redacted": True} for e in seen[1:])
    assert leaked not in database_text(tenant)


def _event(seq: int, type_: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": type_,
        "timestamp": "2026-01-01T00:00:00Z",
        "message": message,
        **extra,
    }


def _output_or_empty(case: Case, run_id: str) -> str:
    handle = ProcessLauncher(case.agent.state_dir).find(f"run:{run_id}", include_exited=True)
    if handle is None or handle.log_path is None or not Path(handle.log_path).exists():
        return ""
    return Path(handle.log_path).read_text(errors="replace")


def _kill_worker(case: Case, run_id: str) -> None:
    launcher = ProcessLauncher(case.agent.state_dir)
    handle = launcher.find(f"run:{run_id}")
    assert handle is not None
    os.kill(command_pid(handle.pid), signal.SIGKILL)


def _logs(tenant: Tenant, run_id: str, **params: Any) -> httpx.Response:
    with tenant.user() as c:
        return c.get(f"{tenant.dep_path}/runs/{run_id}/logs", params=params, timeout=90)


def test_local_logs_are_fetched_from_the_agent_and_never_stored(case: Case) -> None:
    case.set_deployment(forwarding="local", redact_errors=True)
    case.deploy()
    run = case.run("fails")
    assert run["status"] == "FAILURE", run
    assert "LOG" not in types(run["id"], case.tenant)
    m = case.marker
    r = _logs(case.tenant, run["id"])
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["source"] == "agent" and answer["agent"] == "agent-1", answer
    text = answer["text"]
    for present in (f"OUT-{m}", f"ERR-{m}", f"WARNING user.code: LOG-{m}"):
        assert present in text, present
    assert "the secret is <masked:LOGTEST_SECRET>" in text
    # A redacted error's text is not served either: only its marker lines, with the ID.
    failure = next(e for e in events(case.tenant, run["id"]) if e["type"] == "STEP_FAILURE")
    assert f"tether: error {failure['data']['error_id']} (ValueError)" in text
    assert f"BOOM-{m}" not in text
    # The CLI prints the events, then the output fetched from the agent.
    shown = cli(case.tenant, "runs", "logs", run["id"])
    assert shown.returncode == 0, shown.stderr
    assert "RUN_FAILURE" in shown.stdout and f"OUT-{m}" in shown.stdout, shown.stdout
    assert "fetched from agent agent-1" in shown.stderr, shown.stderr
    # The run page says where the logs are and fetches them on request.
    with signed_in(case.tenant) as web:
        page = web.get(f"/d/prod/runs/{run['id']}").text
        assert "Logs are kept in your environment" in page
        assert f'hx-get="/d/prod/runs/{run["id"]}/output"' in page
        fetched = web.get(f"/d/prod/runs/{run['id']}/output").text
        assert "Fetched just now from agent" in fetched and f"OUT-{m}" in fetched
    # Each fetch is on record, by whom (the text is not).
    with case.tenant.user() as c:
        fetches = c.get("/api/v1/audit", params={"action": "run.logs_fetch"}).json()["entries"]
    assert {e["target"] for e in fetches} == {run["id"]} and len(fetches) >= 2, fetches
    assert all(e["actor_name"] == "bootstrap" for e in fetches)
    # Passed through, not stored.
    db = case.database_text()
    for absent in (f"OUT-{m}", f"LOG-{m}", f"BOOM-{m}", case.secret):
        assert absent not in db, absent

    # With no agent to answer, the call says so instead of waiting forever.
    case.agent.stop()
    r = _logs(case.tenant, run["id"], wait_seconds=1)
    assert r.status_code == 504, r.text
    assert "no agent of deployment prod answered within 1 s" in r.json()["detail"]


def test_local_logs_with_a_store_url_store_only_the_url(case: Case, tmp_path: Path) -> None:
    store = tmp_path / "log-store"
    case.deploy(logs={"forwarding": "local", "store_url": store.as_uri()})
    run = case.run("talks")
    assert run["status"] == "SUCCESS", run
    run = wait_until(lambda: (r := case.tenant.run(run["id"]))["log_url"] and r)
    path = store / case.tenant.deployment / f"{run['id']}.log"
    assert run["log_url"] == path.as_uri()
    written = path.read_text()
    assert f"OUT-{case.marker}" in written
    assert "the secret is <masked:LOGTEST_SECRET>" in written
    r = _logs(case.tenant, run["id"])
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "store" and r.json()["url"] == path.as_uri()
    db = case.database_text()
    assert f"OUT-{case.marker}" not in db and case.secret not in db


def test_logs_of_other_modes_say_where_the_text_is(case: Case) -> None:
    case.deploy()
    run = case.run("talks")
    r = _logs(case.tenant, run["id"])
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "events"
    case.deploy("quiet", logs={"forwarding": "structured"})
    run = case.run("talks", location="quiet")
    r = _logs(case.tenant, run["id"])
    assert r.json()["source"] == "none" and "structured" in r.json()["message"]


SENSOR = """
import os

from tether_sdk import Definitions, SensorContext, job, sensor, step


@step
def noop() -> None:
    pass


nothing = job("nothing", steps=[noop])


@sensor(job=nothing, minimum_interval_seconds=1, default_status="RUNNING")
def watcher(context: SensorContext) -> None:
    raise ValueError("SENSE-{m} with " + os.environ["LOGTEST_SECRET"])


defs = Definitions(jobs=[nothing], sensors=[watcher])
"""


def test_a_sensor_error_is_redacted_for_the_control_plane(case: Case, tmp_path: Path) -> None:
    code = tmp_path / f"sensing_{case.marker}.py"
    code.write_text(SENSOR.format(m=case.marker))
    case.tenant.deploy(
        "ticks",
        python_file=str(code),
        passthrough_env=["LOGTEST_SECRET"],
        logs={"redact_errors": True},
    )
    assert wait_for_location(case.tenant, "ticks")["status"] == "RUNNING"

    def failed() -> list[dict[str, Any]]:
        with case.tenant.user() as c:
            path = f"{case.tenant.dep_path}/sensors/ticks/watcher/ticks"
            return list(c.get(path, params={"status": "FAILURE"}).json())

    tick = wait_until(failed, timeout=60, what="a failed tick")[0]
    assert tick["error"].startswith("ValueError (error ID err-"), tick
    assert tick["traceback"] is None
    error_id = tick["error"].split("error ID ")[1].split(";")[0]
    text = case.database_text()
    assert f"SENSE-{case.marker}" not in text and case.secret not in text
    wait_until(lambda: error_id in case.agent.log())
    log = case.agent.log()
    assert f"SENSE-{case.marker} with <masked:LOGTEST_SECRET>" in log[log.index(error_id) :]


def test_the_control_plane_withholds_a_load_error_an_old_agent_sends(case: Case) -> None:
    tenant = case.tenant
    logs = {"forwarding": "structured", "redact_errors": True}
    tenant.deploy("legacy", python_file=str(case.code), agent_queue="nobody", logs=logs)
    leaked = f"LEAK-{case.marker}"
    report = {
        "status": "ERROR",
        "message": f"could not load the definitions: ValueError: {leaked}\nTraceback ...",
        "log_tail": [leaked],
    }
    with tenant.agent() as c:
        r = c.post("/api/v1/agent/code-locations/legacy/status", json=report)
        assert r.status_code == 200, r.text
    error = r.json()["error"]
    assert error["message"].startswith("could not load the definitions: error text withheld")
    assert error["log_tail"] == []
    assert leaked not in database_text(tenant)
