"""Metrics end to end: Debian's real Prometheus, started here on a free port with the example
configuration (deploy/monitoring/prometheus.yml, pointed at this stack, scraping every
second), scrapes a real control plane and a real agent; what the tests cause comes back from
its query API. The Grafana dashboard's queries and the alert rules are checked against it and
with promtool. One stack for the module."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.cli.test_agent_config_errors import agent_run, said
from tests.support import (
    REPO,
    ControlPlane,
    Tenant,
    command_pid,
    free_port,
    stop_process,
    wait_until,
)
from workflows import names

MONITORING = REPO / "deploy" / "monitoring"
SECRET = "e2e-metrics-secret-0123456789"


def prometheus_binary() -> Path:
    found = os.environ.get("TETHER_TEST_PROMETHEUS") or shutil.which("prometheus")
    if found and os.access(found, os.X_OK) and (Path(found).parent / "promtool").exists():
        return Path(found)
    if os.environ.get("CI") == "true":
        pytest.fail("no Prometheus: scripts/test.sh installs it (scripts/setup-prometheus.sh)")
    pytest.skip("no Prometheus: run scripts/setup-prometheus.sh (root on Debian)")


@dataclass
class Prometheus:
    binary: Path
    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def promtool(self) -> Path:
        return self.binary.parent / "promtool"

    def start(self, config: dict[str, Any]) -> "Prometheus":
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, timeout=30, interval=0.1, what="prometheus ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError((self.workdir / "prometheus.log").read_text()[-3000:])
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> dict[str, float]:
        """Each series of the instant query's answer, by its labels, as a number."""
        result = self.api("query", query=promql)["result"]
        return {
            ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items())): float(r["value"][1])
            for r in result
        }

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Stack:
    tenant: Tenant
    agent: AgentProcess
    prometheus: Prometheus


def scrape_config(cp: ControlPlane, agent_address: str, token_file: Path) -> dict[str, Any]:
    """The example configuration, pointed at this stack, scraping every second."""
    config: dict[str, Any] = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(MONITORING / "prometheus-alerts.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["tether-controlplane"]["static_configs"] = [{"targets": [f"127.0.0.1:{cp.port}"]}]
    jobs["tether-controlplane"]["authorization"]["credentials_file"] = str(token_file)
    jobs["tether-agent"]["static_configs"] = [{"targets": [agent_address]}]
    return config


@pytest.fixture(scope="module")
def stack(
    temporal_server: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    binary = prometheus_binary()
    workdir = tmp_path_factory.mktemp("metrics")
    cp = ControlPlane(workdir, metrics_token=SECRET).start()
    agent = prometheus = None
    try:
        tenant = cp.tenant()
        address = f"127.0.0.1:{free_port()}"
        agent = AgentProcess(
            tenant, temporal_server, workdir, TETHER_AGENT_METRICS_ADDRESS=address
        ).start()
        token_file = workdir / "metrics.token"
        token_file.write_text(SECRET)
        token_file.chmod(0o600)
        (workdir / "prometheus").mkdir()
        prometheus = Prometheus(binary, workdir / "prometheus").start(
            scrape_config(cp, address, token_file)
        )
        tenant.deploy()
        assert wait_for_location(tenant, "quick")["status"] == "RUNNING"
        yield Stack(tenant, agent, prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if agent is not None:
            # Killed, not stopped: a graceful stop waits seconds for nothing this test needs.
            agent.kill()
            stop_launched(agent.state_dir)
        cp.stop()


def test_prometheus_counts_the_runs_that_failed(stack: Stack) -> None:
    tenant, prometheus = stack.tenant, stack.prometheus
    runs = [
        tenant.launch("quick", "etl", run_config={"source": f"s{i}", "fail": True})
        for i in range(3)
    ]
    for run in runs:
        assert wait_for_run(tenant, run["id"])["status"] == "FAILURE"
    ours = f'organization="{tenant.org}",deployment="{tenant.deployment}"'

    def failed() -> dict[str, float]:
        return prometheus.query(f'sum(tether_runs_finished_total{{{ours},status="FAILURE"}})')

    assert wait_until(lambda: failed() == {"": 3.0}, timeout=20, what="3 failures in Prometheus")
    # The agent's own figures: three run workers launched, warm (forked by the code server).
    launches = 'sum by (mode) (tether_agent_launches_total{job="tether-agent",kind="run-worker"})'
    assert wait_until(lambda: prometheus.query(launches).get("mode=warm") == 3.0, timeout=10)
    assert prometheus.query(launches) == {"mode=cold": 0.0, "mode=pool": 0.0, "mode=warm": 3.0}
    latency = 'sum(tether_agent_launch_seconds_count{job="tether-agent",kind="run-worker"})'
    assert prometheus.query(latency) == {"": 3.0}
    # And Temporal's, from the same address.
    slots = 'count(temporal_worker_task_slots_available{job="tether-agent"})'
    assert prometheus.query(slots)[""] > 0
    queued = f'max(tether_runs{{{ours},status="QUEUED"}})'
    assert prometheus.query(queued) == {"": 0.0}


# Names in PromQL: the metrics of the control plane, the agents, their Temporal workers and
# their processes (label names never start so).
METRIC = re.compile(r"\b((?:tether|temporal|process|python)_[a-zA-Z0-9_]+|up)\b(?!\s*\()")


def dashboard_queries() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    return [target["expr"] for panel in panels for target in panel["targets"]]


def as_run(expr: str) -> str:
    """A dashboard query as Grafana would send it, every variable at 'All'."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$organization", ".*")
        .replace("$deployment", ".*")
    )


def known_names(prometheus: Prometheus) -> set[str]:
    """Every series name Prometheus holds, and every family its targets declared (a labelled
    counter nothing has counted yet is declared, with no series)."""
    names = set(prometheus.api("label/__name__/values"))
    for name, metadata in prometheus.api("metadata").items():
        names.add(name)
        if metadata[0]["type"] == "histogram":
            names.update(f"{name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    return names


def test_every_dashboard_query_names_served_metrics_and_runs(stack: Stack) -> None:
    prometheus = stack.prometheus
    queries = dashboard_queries()
    named = {name for expr in queries for name in METRIC.findall(expr)}
    assert {"tether_runs", "tether_agent_launches_total", "up"} <= named
    missing: set[str] = set()

    def all_served() -> bool:
        nonlocal missing
        missing = named - known_names(prometheus)
        return not missing

    try:
        wait_until(all_served, timeout=10)
    except AssertionError:
        pytest.fail(f"the dashboard names metrics nothing serves: {sorted(missing)}")
    for expr in queries:
        prometheus.api("query", query=as_run(expr))  # asserts it evaluates


def test_the_alert_rules_check_test_and_load(stack: Stack) -> None:
    prometheus = stack.prometheus
    for command in (
        ["check", "rules", "prometheus-alerts.yml"],
        ["test", "rules", "prometheus-alerts.test.yml"],
        ["check", "config", "--syntax-only", "prometheus.yml"],
    ):
        done = subprocess.run(
            [str(prometheus.promtool), *command],
            cwd=MONITORING,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    declared = yaml.safe_load((MONITORING / "prometheus-alerts.yml").read_text())
    names = {rule["alert"] for group in declared["groups"] for rule in group["rules"]}
    assert {"TetherAgentDown", "TetherRunQueueGrowing", "TetherSchedulerLag"} <= names
    assert "TetherCodeLocationError" in names

    def evaluated() -> dict[str, str] | None:
        groups = prometheus.api("rules")["groups"]
        health = {rule["name"]: rule["health"] for g in groups for rule in g["rules"]}
        return health if set(health) == names and set(health.values()) == {"ok"} else None

    wait_until(evaluated, timeout=10, what="every alert rule loaded and evaluated")
    # This stack is healthy: nothing fires.
    firing = prometheus.api("alerts")["alerts"]
    assert [a["labels"]["alertname"] for a in firing if a["state"] == "firing"] == []


def test_a_code_server_that_dies_counts_as_an_exit_and_a_restart(stack: Stack) -> None:
    tenant, prometheus = stack.tenant, stack.prometheus
    workflow_id = names.code_location_workflow_id(tenant.org, tenant.deployment, "quick")
    handle = ProcessLauncher(stack.agent.state_dir).find(f"{workflow_id}#1")
    assert handle is not None
    os.kill(command_pid(handle.pid), signal.SIGKILL)
    servers = (
        'sum by (__name__, stage) ({job="tether-agent",'
        '__name__=~"tether_agent_code_server_(starts|restarts|errors)_total"})'
    )

    def restarted() -> dict[str, float] | None:
        found = prometheus.query(servers)
        return found if found.get("__name__=tether_agent_code_server_restarts_total") else None

    assert wait_until(restarted, timeout=30, what="the code server restarted") == {
        "__name__=tether_agent_code_server_starts_total": 2.0,
        "__name__=tether_agent_code_server_restarts_total": 1.0,
        "__name__=tether_agent_code_server_errors_total,stage=exit": 1.0,
        "__name__=tether_agent_code_server_errors_total,stage=launch": 0.0,
    }
    assert wait_for_location(tenant, "quick", ("RUNNING",))["status"] == "RUNNING"


def test_a_metrics_address_that_is_not_ip_port_exits_2(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        result = agent_run(listener, tmp_path, TETHER_AGENT_METRICS_ADDRESS="localhost:9464")
    assert result.returncode == 2, result.stderr
    assert (
        "TETHER_AGENT_METRICS_ADDRESS: 'localhost:9464' is not an address to listen on; give "
        "IP:PORT, e.g. 127.0.0.1:9464 (0.0.0.0:9464 to be scraped from other hosts)"
    ) in said(result)


def test_a_metrics_address_in_use_exits_1(tmp_path: Path) -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as taken,
        socket.create_server(("127.0.0.1", 0)) as listener,
    ):
        listener.setblocking(False)
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = agent_run(listener, tmp_path, TETHER_AGENT_METRICS_ADDRESS=address)
    assert result.returncode == 1, result.stderr
    assert f"cannot serve the agent's metrics at {address} (TETHER_AGENT_METRICS_ADDRESS)" in (
        said(result)
    )
