"""``tether dev`` end to end, as a user runs it: the real Temporal dev server, control plane,
agent, code server and run worker, started by one command; Ctrl-C; a restart on the same
home; a crash of one part; a busy port."""

import asyncio
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from tests.e2e.nexus_callers import CallerInput, RunJobCallerWorkflow
from tests.support import REPO, free_port, wait_until
from tether_api.nexus import RunJobInput, RunJobResult

pytestmark = pytest.mark.e2e

ETL_CONFIG = {"source": "s3://bucket/orders.csv"}
READY = "Press Ctrl-C to stop everything."
STARTED = re.compile(r"started (.+?) \(pid (\d+)\)")


def alive(pid: int) -> bool:
    """Running, and not a zombie (a container's PID 1 may never reap the orphans)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return text[text.rfind(")") + 2 :].split()[0] != "Z"


def launched_pids(home: Path) -> list[int]:
    """Supervisor and command PIDs of what the agent launched (code servers, run workers)."""
    pids = []
    for record in (home / "agent" / "processes").glob("*/process.json"):
        pids.append(int(json.loads(record.read_text())["pid"]))
        child = record.with_name("child_pid")
        if child.exists():
            pids.append(int(child.read_text().strip()))
    return pids


class Dev:
    """One ``tether dev`` process, its output in a file."""

    def __init__(self, home: Path, out: Path, *args: object) -> None:
        self.home = home
        self.out = out
        self.args = [str(a) for a in args]
        # Nothing from the caller's shell may point the stack or the CLI elsewhere.
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "TEMPORAL_"))
        }
        self.env["TETHER_HOME"] = str(home)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Dev":
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tether_cli.main", "dev", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                # As from a terminal: its own session, so our signals go only where we send them.
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_ready(self) -> str:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"tether dev exited {self.proc.returncode}:\n{self.output()}")
            return READY in self.output()

        wait_until(ready, timeout=60, interval=0.2, what="tether dev ready")
        return self.output()

    def children(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in STARTED.findall(self.output())}

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def interrupt(self) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGINT)
        return self.wait_exit()

    def cleanup(self) -> None:
        """Whatever happened in the test, nothing it started outlives it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.children().values() if self.out.exists() else []:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        from activities.launchers.process import ProcessLauncher

        ProcessLauncher(self.home / "agent").stop_all(grace_seconds=1)


def api(saved: dict[str, Any], path: str) -> Any:
    r = httpx.get(
        f"{saved['url']}/api/v1/deployments/{saved['deployment']}{path}",
        headers={"Authorization": f"Bearer {saved['user_token']}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def assert_search_attributes(address: str) -> None:
    """Tether's search attributes are registered (as Keyword) on the default namespace."""
    from worker.temporal_binary import temporal_cli
    from workflows.search_attributes import ALL

    listed = subprocess.run(
        [temporal_cli(), "operator", "search-attribute", "list", "--address", address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    rows = {tuple(line.split()) for line in listed.stdout.splitlines()}
    assert {(name, type_name) for name, type_name in ALL.items()} <= rows, listed.stdout


async def run_through_nexus(address: str, endpoint: str) -> RunJobResult:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    async with Worker(client, task_queue="dev-callers", workflows=[RunJobCallerWorkflow]):
        return await client.execute_workflow(
            RunJobCallerWorkflow.run,
            CallerInput(
                endpoint=endpoint,
                job=RunJobInput(code_location="quickstart", job="etl", run_config=ETL_CONFIG),
            ),
            id="dev-caller",
            task_queue="dev-callers",
        )


def assert_all_stopped(pids: list[int]) -> None:
    left = [pid for pid in pids if alive(pid)]
    assert not left, f"still running: {left}"


def test_dev_starts_everything_stops_on_ctrl_c_and_restarts_where_it_left(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    args = ("--headless", "--port", free_port(), "--temporal-port", free_port())
    first = Dev(home, tmp_path / "dev-1.out", *args)
    second = Dev(home, tmp_path / "dev-2.out", *args)
    try:
        text = first.start().wait_ready()

        # URLs, tokens, logs; dev.json for the user commands, readable by the owner only.
        saved = json.loads((home / "dev.json").read_text())
        assert stat.S_IMODE((home / "dev.json").stat().st_mode) == 0o600
        port, temporal_port = args[2], args[4]
        assert saved["url"] == f"http://127.0.0.1:{port}"
        assert (saved["organization"], saved["deployment"]) == ("local", "dev")
        assert saved["temporal_address"] == f"127.0.0.1:{temporal_port}"
        assert saved["temporal_ui"] is None  # --headless
        assert saved["user_token"].startswith("tether_user_") and saved["user_token"] in text
        assert saved["agent_token"].startswith("tether_agent_") and saved["agent_token"] in text
        assert saved["nexus_token"].startswith("tether_nexus_")
        assert "Nexus endpoint" in text and "tether-dev" in text
        assert f"http://127.0.0.1:{port}/docs" in text
        assert str(home / "logs") in text
        for log in ("temporal", "controlplane", "agent"):
            assert (home / "logs" / f"{log}.log").stat().st_size > 0
        children = first.children()
        assert set(children) == {"Temporal", "control plane", "agent"}, text
        assert_search_attributes(saved["temporal_address"])

        location = api(saved, "/code-locations/quickstart")
        assert location["status"] == "RUNNING", location
        agents = api(saved, "/agents")
        assert [(a["name"], a["available"]) for a in agents] == [("dev", True)]

        # One `tether dev` per home.
        busy = subprocess.run(
            [sys.executable, "-m", "tether_cli.main", "dev", "--headless", "--port", "1"],
            env=first.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert busy.returncode == 1 and "another `tether dev`" in busy.stderr, busy.stderr

        # The user CLI finds the stack through $TETHER_HOME/dev.json alone.
        launch = subprocess.run(
            [
                *(sys.executable, "-m", "tether_cli.main", "runs", "launch", "quickstart", "etl"),
                *("--config-json", json.dumps(ETL_CONFIG), "--follow"),
            ],
            env=first.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert launch.returncode == 0, launch.stdout + launch.stderr
        run_id = launch.stdout.splitlines()[0].strip()
        assert api(saved, f"/runs/{run_id}")["status"] == "SUCCESS"

        # A Temporal workflow runs the same job through the endpoint `tether dev` made.
        result = asyncio.run(run_through_nexus(saved["temporal_address"], "tether-dev"))
        assert result.status == "SUCCESS"
        assert api(saved, f"/runs/{result.run_id}")["caller"]["namespace"] == "default"

        launched = launched_pids(home)
        assert any(alive(pid) for pid in launched), "no code server running"

        # Ctrl-C: exit 0, and nothing left: not the children, not the code server.
        assert first.interrupt() == 0, first.output()
        assert_all_stopped([*children.values(), *launched])
        assert "SIGINT received" in first.output()

        # Again on the same home: same tokens, same runs and locations, RUNNING again.
        text = second.start().wait_ready()
        assert json.loads((home / "dev.json").read_text()) == saved
        assert "kept from the last start" in text
        assert api(saved, f"/runs/{run_id}")["status"] == "SUCCESS"
        again = api(saved, "/code-locations/quickstart")
        assert again["status"] == "RUNNING", again
        assert again["generation"] > location["generation"]
        # The dev server kept them in its database (and registers none into an old one).
        assert_search_attributes(saved["temporal_address"])

        # A part that dies is reported, and the rest is stopped: exit 1.
        children = second.children()
        launched = launched_pids(home)
        os.kill(children["agent"], signal.SIGKILL)
        assert second.wait_exit() == 1, second.output()
        assert f"agent (pid {children['agent']}) exited with code -9" in second.output()
        assert_all_stopped([*children.values(), *launched])
    finally:
        first.cleanup()
        second.cleanup()


def test_dev_refuses_a_busy_port_naming_the_flag(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        for flags, flag in (
            (("--port", busy, "--temporal-port", free_port()), "--port"),
            (("--port", free_port(), "--temporal-port", busy), "--temporal-port"),
        ):
            dev = Dev(home, tmp_path / "dev.out", "--headless", *flags)
            try:
                assert dev.start().wait_exit() == 1
            finally:
                dev.cleanup()
            output = dev.output()
            assert f"port {busy} on 127.0.0.1" in output and f"pass {flag} " in output, output
            assert "started" not in output
    # Nothing was started, nothing was written.
    assert not (home / "dev.json").exists()
    assert not list((home / "logs").glob("*.log"))


WATCHED = """
from tether_sdk import Definitions, StepContext, job, step


@step
def fetch(ctx: StepContext) -> int:
    return 1


defs = Definitions(jobs=[job("JOB", steps=[fetch])])
"""


def test_dev_watch_redeploys_a_location_whose_files_change(tmp_path: Path) -> None:
    """A location deployed from a folder here, after `tether dev --watch` started: a saved
    change redeploys it, and `tether dev` says how the redeploy went."""
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    (project / "pipeline.py").write_text(WATCHED.replace("JOB", "first"))
    dev = Dev(
        home,
        tmp_path / "dev.out",
        *("--headless", "--no-example", "--watch"),
        *("--port", free_port(), "--temporal-port", free_port()),
    )
    try:
        dev.start().wait_ready()
        saved = json.loads((home / "dev.json").read_text())
        deployed = subprocess.run(
            [
                *(sys.executable, "-m", "tether_cli.main", "deploy", "mine", "-f"),
                *("pipeline.py", "--working-directory", ".", "--timeout", "60"),
            ],
            env=dev.env,
            cwd=project,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert deployed.returncode == 0, deployed.stderr
        wait_until(
            lambda: f"mine in {project}" in dev.output(), 30, 0.2, what="the watch to see it"
        )
        before = api(saved, "/code-locations/mine")["generation"]
        (project / "pipeline.py").write_text(WATCHED.replace("JOB", "second"))

        def redeployed() -> list[str]:
            found = api(saved, "/code-locations/mine")
            if found["status"] != "RUNNING" or found["generation"] == before:
                return []
            return [j["name"] for j in found["snapshot"]["jobs"]]

        assert wait_until(redeployed, 60, 0.2, what="the redeploy") == ["second"]
        wait_until(lambda: "mine is RUNNING" in dev.output(), 30, 0.2, what="the report")
        assert "files of 'mine' changed: redeploying" in dev.output()
        assert dev.interrupt() == 0, dev.output()
    finally:
        dev.cleanup()
