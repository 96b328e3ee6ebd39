"""Test support for the agent: a real Temporal dev server and a real agent process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import REPO, Tenant, free_port, wait_until
from worker.search_attributes import start_dev_flags
from worker.temporal_binary import temporal_cli


class TemporalDevServer:
    """``temporal server start-dev`` on free loopback ports, persisted to a file, with
    Tether's search attributes registered (``search_attributes=False``: without them, as
    a cluster set up before Tether); ``namespaces``: more than ``default``."""

    def __init__(
        self, workdir: Path, search_attributes: bool = True, namespaces: tuple[str, ...] = ()
    ) -> None:
        self.workdir = workdir
        self.search_attributes = search_attributes
        self.namespaces = namespaces
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Its HTTP API, Nexus requests included (/nexus/endpoints/{id}/services/...).
        self.http_port = free_port()
        self.db_file = workdir / "temporal.db"
        self.log_path = workdir / "temporal.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TemporalDevServer:
        command = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "warn",
            "--headless",
        ]
        log = self.log_path.open("ab")
        # The dev server also listens on a metrics port and an HTTP port; free ones, so that
        # parallel servers never collide.
        command += ["--metrics-port", str(free_port()), "--http-port", str(self.http_port)]
        if self.search_attributes:
            command += start_dev_flags()
        for namespace in self.namespaces:
            command += ["--namespace", namespace]
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, timeout=60, interval=0.2, what=f"Temporal at {self.address}")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"temporal exited: {self.log_path.read_text()[-3000:]}")
        result = subprocess.run(
            [temporal_cli(), "workflow", "list", "--address", self.address, "--limit", "1"],
            capture_output=True,
            timeout=20,
        )
        return result.returncode == 0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``temporal ARGS --address THIS``."""
        return subprocess.run(
            [temporal_cli(), *args, "--address", self.address],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class AgentProcess:
    """``tether agent run`` for one tenant, with its own task queue and state directory."""

    def __init__(
        self,
        tenant: Tenant,
        temporal: TemporalDevServer,
        workdir: Path,
        name: str = "agent-1",
        *,
        state_dir: Path | None = None,
        queues: tuple[str, ...] = (),
        source: Path | None = None,
        **env: Any,
    ) -> None:
        """``state_dir``: its own, as on a host of its own (default: the workdir's);
        ``queues``: agent queues to serve; ``source``: run the agent from another checkout of
        Tether (an older release, for upgrades)."""
        self.tenant = tenant
        self.temporal = temporal
        self.name = name
        self.state_dir = state_dir or workdir / "agent-state"
        self.queues = queues
        self.source = source
        self.log_path = workdir / f"agent-{name}.log"
        self.task_queue = f"tq:{tenant.org}"
        self.env = {k: str(v) for k, v in env.items()}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def workflow_id(self) -> str:
        return f"agent:{self.tenant.org}:{self.tenant.deployment}:{self.name}"

    def start(self) -> AgentProcess:
        env = {
            **os.environ,
            "TETHER_CONTROL_PLANE_URL": self.tenant.cp.url,
            "TETHER_AGENT_TOKEN": self.tenant.agent_token,
            # Short intervals keep the tests quick; production defaults are longer.
            "TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS": "1",
            "TETHER_CODE_LOCATION_RESTART_BACKOFF_INITIAL_SECONDS": "1",
            "TETHER_CODE_LOCATION_RESTART_BACKOFF_MAX_SECONDS": "5",
            "TETHER_RUN_STOP_GRACE_SECONDS": "5",
            **self.env,
        }
        if self.source is not None:
            # Its own packages first on the path, ahead of the installed (editable) Tether.
            env["PYTHONPATH"] = str(self.source)
        # A restarted agent appends to the same log: only what it writes counts as serving.
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tether_cli.main",
                "agent",
                "run",
                "--name",
                self.name,
                "--temporal-address",
                self.temporal.address,
                "--task-queue",
                self.task_queue,
                "--state-dir",
                str(self.state_dir),
                "--poll-wait",
                "5",
                *(arg for queue in self.queues for arg in ("--queue", queue)),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.source or REPO,
        )
        wait_until(self._serving, timeout=60, interval=0.1, what=f"agent {self.name} serving")
        return self

    def _serving(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited: {self.log()[-3000:]}")
        return b"serving" in self.log_path.read_bytes()[self._log_offset :]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the agent dies without any cleanup, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def wait_for_run(
    tenant: Tenant, run_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 60
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        run = tenant.run(run_id)
        return run if run["status"] in statuses else None

    result: dict[str, Any] = wait_until(
        reached, timeout=timeout, interval=0.1, what=f"run {run_id} in {statuses}"
    )
    return result


def location(tenant: Tenant, name: str) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/code-locations/{name}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def wait_for_location(
    tenant: Tenant, name: str, statuses: tuple[str, ...] = ("RUNNING", "ERROR"), timeout: float = 60
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        loc = location(tenant, name)
        return loc if loc["status"] in statuses else None

    result: dict[str, Any] = wait_until(
        reached, timeout=timeout, interval=0.1, what=f"location {name} in {statuses}"
    )
    return result


def events(tenant: Tenant, run_id: str) -> list[dict[str, Any]]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/runs/{run_id}/events", params={"limit": 1000})
        assert r.status_code == 200, r.text
        return r.json()["events"]  # type: ignore[no-any-return]


def stop_launched(state_dir: Path) -> None:
    """Stop every process an agent's launcher started from ``state_dir`` (by its recorded
    pid), so nothing a test or benchmark started outlives it."""
    from activities.launchers.process import ProcessLauncher

    ProcessLauncher(state_dir).stop_all(grace_seconds=2)


def worker_starts(state_dir: Path, run_id: str) -> int:
    """How many times a run worker was started for ``run_id``: the launcher writes one
    banner per start into the label's log. (Events cannot tell: a second worker's RUN_START
    would be seq 1 again, and the control plane stores (run, seq) once.)"""
    from activities.launchers.process import ProcessLauncher

    handle = ProcessLauncher(state_dir).find(f"run:{run_id}", include_exited=True)
    if handle is None or handle.log_path is None:
        return 0
    return Path(handle.log_path).read_text(errors="replace").count("--- tether: starting ")


def agent_metrics(address: str) -> dict[str, float]:
    """What the agent serves at ``address`` (TETHER_AGENT_METRICS_ADDRESS), as a scraper
    reads it: each metric's samples summed over their labels."""
    import httpx

    text = httpx.get(f"http://{address}/metrics", timeout=5).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name = series.partition("{")[0]
        found[name] = found.get(name, 0.0) + float(value)
    return found
