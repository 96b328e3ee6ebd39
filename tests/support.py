"""Test support: a real control plane in a subprocess, tenants, and typed clients."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tether_cli.dev.options import Options
from tether_controlplane.bootstrap import bootstrap

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def code_server(command: list[str], workdir: Path, cwd: Path | None = None) -> Iterator[str]:
    """Run ``command ... --port 0 --port-file F`` (a code server, in ``cwd``: by default
    this one) and yield its URL; the process is stopped by PID at the end."""
    port_file = workdir / f"port-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(
        [*command, "--port", "0", "--port-file", str(port_file)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: port_file.exists() or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, proc.communicate()[0]
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    predicate: Any, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or predicate}; last={last!r}"
    )


def fresh_postgres_database(admin_url: str) -> str:
    """Create an empty database next to ``admin_url``'s and return its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tether_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 10) -> None:
    """SIGTERM ``proc`` (if it still runs), and SIGKILL it after ``grace`` seconds."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ControlPlane:
    """``tether controlplane serve`` on 127.0.0.1, stoppable and restartable on the same port."""

    def __init__(
        self,
        workdir: Path,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        **settings: Any,
    ) -> None:
        """``settings``: ``TETHER_*`` settings; ``env``: any other variables (SSL_CERT_FILE)."""
        self.workdir = workdir
        self.env = env or {}
        self.database_url = database_url or f"sqlite:///{workdir / 'tether.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "controlplane.log"

    def start(self) -> ControlPlane:
        env = {**os.environ, "TETHER_HOME": str(self.workdir), **self.env}
        env.update({f"TETHER_{k.upper()}": str(v) for k, v in self.settings.items()})
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tether_cli.main",
                "controlplane",
                "serve",
                "--db",
                self.database_url,
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout=30, what=f"control plane on {self.url}")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"control plane exited: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def tenant(self, concurrency: int = 10) -> Tenant:
        org = f"org-{uuid.uuid4().hex[:8]}"
        result = bootstrap(self.database_url, org, "prod", concurrency)
        return Tenant(self, org, "prod", result.user_token, result.agent_token)


@dataclass
class Tenant:
    cp: ControlPlane
    org: str
    deployment: str
    user_token: str
    agent_token: str

    def user(self) -> httpx.Client:
        return client(self.cp.url, self.user_token)

    def agent(self) -> httpx.Client:
        return client(self.cp.url, self.agent_token)

    @property
    def dep_path(self) -> str:
        return f"/api/v1/deployments/{self.deployment}"

    def deploy(self, name: str = "quick", **spec: Any) -> dict[str, Any]:
        spec = spec or {"module": "tether_sdk.examples.quickstart"}
        with self.user() as c:
            r = c.put(f"{self.dep_path}/code-locations/{name}", json=spec)
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

    def report_running(self, name: str, snapshot: dict[str, Any]) -> None:
        """Deploy ``name`` and report it RUNNING with ``snapshot``, as its agent would."""
        self.deploy(name)
        with self.agent() as c:
            r = c.post(
                f"/api/v1/agent/code-locations/{name}/status",
                json={"status": "RUNNING", "snapshot": snapshot, "generation": 1},
            )
            assert r.status_code == 200, r.text

    def launch(self, location: str = "quick", job: str = "etl", **body: Any) -> dict[str, Any]:
        with self.user() as c:
            r = c.post(
                f"{self.dep_path}/runs", json={"code_location": location, "job": job, **body}
            )
            assert r.status_code == 201, r.text
            return r.json()  # type: ignore[no-any-return]

    def run(self, run_id: str) -> dict[str, Any]:
        with self.user() as c:
            r = c.get(f"{self.dep_path}/runs/{run_id}")
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

    def poll(
        self, wait: float = 0, agent_name: str = "agent-1", **extra: Any
    ) -> list[dict[str, Any]]:
        with self.agent() as c:
            r = c.post(
                "/api/v1/agent/requests/poll",
                json={"agent_name": agent_name, "wait_seconds": wait, **extra},
                timeout=wait + 10,
            )
            assert r.status_code == 200, r.text
            return r.json()["requests"]  # type: ignore[no-any-return]

    def nexus_token(self, name: str = "nexus") -> str:
        """A new nexus token of the tenant's deployment, for an agent's Nexus service."""
        with self.user() as c:
            r = c.post(
                "/api/v1/tokens",
                json={"kind": "nexus", "name": name, "deployment": self.deployment},
            )
            assert r.status_code == 201, r.text
            return r.json()["token"]  # type: ignore[no-any-return]

    def run_token(self, run_id: str) -> str:
        with self.agent() as c:
            r = c.post(f"/api/v1/agent/runs/{run_id}/token")
            assert r.status_code == 200, r.text
            return r.json()["token"]  # type: ignore[no-any-return]


def client(base_url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


def event(seq: int, type_: str = "LOG", message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": type_,
        "timestamp": "2026-01-01T00:00:00Z",
        "message": message,
        **extra,
    }


def dev_options(home: Path, headless: bool = True, temporal_address: str | None = None) -> Options:
    """``tether dev``'s options with their defaults, in ``home``."""
    return Options(
        home=home,
        port=3000,
        temporal_port=7233,
        temporal_ui_port=8233,
        temporal_metrics_port=None,
        temporal_http_port=None,
        temporal_address=temporal_address,
        org="local",
        deployment="dev",
        example=True,
        headless=headless,
    )


def children(pid: int) -> list[tuple[int, str]]:
    """(PID, state) of each child of ``pid``: state Z is an unreaped zombie."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append((int(stat.parent.name), fields[0]))
    return found


def command_pid(supervisor: int | None) -> int:
    """The PID of a launched command: the one live child of its supervisor (a process
    launcher handle's ``pid``, cold or forked warm), as ``ps --ppid`` would show it."""
    assert supervisor is not None, "the handle has no PID"
    live = [pid for pid, state in children(supervisor) if state != "Z"]
    assert len(live) == 1, f"supervisor {supervisor} has children {live}, not one"
    return live[0]


def database_text(tenant: Tenant, run_id: str | None = None) -> str:
    """What the tenant's control plane's SQLite database holds, as text: every row of every
    table, or, with ``run_id``, only that run's row and its events (a session's control
    plane is shared: other tests' runs may print the same lines)."""
    path = tenant.cp.database_url.removeprefix("sqlite:///")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if run_id is not None:
            rows = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchall()
            rows += db.execute(
                "SELECT e.* FROM run_events e JOIN runs r ON e.run_pk = r.pk WHERE r.id = ?",
                (run_id,),
            ).fetchall()
            return "\n".join(repr(row) for row in rows)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')
        )
    finally:
        db.close()


def set_schedule_cursor(tenant: Tenant, name: str, cursor: datetime) -> None:
    """Move a schedule's cursor (how far the scheduler has looked) in the tenant's SQLite
    control plane: the scheduler then finds the ticks after it due."""
    url = tenant.cp.database_url
    assert url.startswith("sqlite:///"), url
    with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as db:
        changed = db.execute(
            "UPDATE schedules SET cursor = ? WHERE name = ? AND deployment_id = "
            "(SELECT d.id FROM deployments d JOIN organizations o ON d.organization_id = o.id "
            "WHERE o.name = ? AND d.name = ?)",
            (
                cursor.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "),
                name,
                tenant.org,
                tenant.deployment,
            ),
        ).rowcount
    assert changed == 1


def cli(tenant: Tenant, *args: str) -> subprocess.CompletedProcess[str]:
    """``tether ARGS`` as a user of the tenant's deployment."""
    connection = ["--url", tenant.cp.url, "--token", tenant.user_token]
    connection += ["--deployment", tenant.deployment]
    return subprocess.run(
        [sys.executable, "-m", "tether_cli.main", *args, *connection],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


def interruptible() -> None:
    """``preexec_fn`` for a command a test stops with SIGINT, as Ctrl-C would: SIGINT back to
    its default. A pytest-xdist worker ignores SIGINT, and an ignored signal is inherited
    across exec, so Python would not turn it into KeyboardInterrupt in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
