"""Encrypted Temporal payloads end to end: an agent with a key, on a Temporal dev server of its
own, deploys and runs; every history on that server is then read raw, as anyone with access
to the Temporal server (or Temporal Cloud) could, and holds no run config value, tag, error
text or log tail in clear. ``tether codec-server`` with its token shows the payloads (the
workflows' own inputs and results) to the ``temporal`` CLI, and refuses without it. A key
rotation keeps the running workflows and the old histories readable, and the encrypted
histories replay on today's workflow code."""

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.support import Tenant, command_pid, free_port, wait_until
from worker.codec import METADATA_KEY_ID, data_converter, new_key, parse_keys
from workflows.agent import AgentWorkflow
from workflows.code_location import CodeLocationWorkflow
from workflows.run import RunWorkflow
from workflows.tick import TickWorkflow

pytestmark = pytest.mark.xdist_group("encrypted-histories")

K1 = f"k1:{new_key()}"
K2 = f"k2:{new_key()}"
TOKEN = "codec-token-for-tests"
CODE = """
import time
from pydantic import BaseModel
from tether_sdk import Definitions, StepContext, job, step

class Config(BaseModel):
    source: str
    fail: bool = False
    sleep_seconds: float = 0

@step
def read(ctx: StepContext, config: Config) -> None:
    print(f"reading {config.source}", flush=True)  # output.log: the agent's log tail
    if config.fail:
        raise RuntimeError(f"cannot read {config.source}")
    time.sleep(config.sleep_seconds)

defs = Definitions(jobs=[job("read", steps=[read], config=Config)])
"""


@pytest.fixture
def temporal(own_temporal: TemporalDevServer) -> TemporalDevServer:
    """A server of its own, so that "every history" means this test's and nothing else."""
    return own_temporal


def raw_histories(address: str) -> dict[str, bytes]:
    """Every history on the server as its protobuf bytes, read with no codec: what the
    Temporal server stores and shows to whoever can read it."""

    async def read() -> dict[str, bytes]:
        client = await Client.connect(address)
        found: dict[str, bytes] = {}
        async for wf in client.list_workflows():
            history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            found[f"{wf.id} {wf.run_id}"] = History(events=history.events).SerializeToString()
        return found

    return asyncio.run(read())


def decoded_histories(address: str, keys: str) -> list[WorkflowHistory]:
    async def read() -> list[WorkflowHistory]:
        client = await Client.connect(
            address, data_converter=data_converter(parse_keys(keys, "test"))
        )
        return [
            await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            async for wf in client.list_workflows()
        ]

    return asyncio.run(read())


class CodecServerProcess:
    """``tether codec-server`` as users run it, on a free port."""

    def __init__(self, keys: str, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TETHER_CODEC_SERVER_TOKEN": TOKEN}
        env["TETHER_TEMPORAL_ENCRYPTION_KEYS"] = keys
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tether_cli.main", "codec-server", "--port", str(self.port)],
            env=env,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self._up, timeout=20, what="tether codec-server")

    def _up(self) -> bool:
        assert self.proc.poll() is None, "tether codec-server exited"
        import httpx

        try:
            return httpx.post(f"{self.url}/decode", content=b"{}").status_code == 401
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def shown(temporal: TemporalDevServer, workflow_id: str, *codec: str) -> str:
    """``temporal workflow show`` of one workflow, through the codec server when given: its
    output, and the payloads' data it prints in base64, decoded."""
    result = temporal.cli("workflow", "show", "-w", workflow_id, "--output", "json", *codec)
    found = [result.stdout, result.stderr]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                found.append(base64.b64decode(node["data"]).decode(errors="replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if result.returncode == 0:
        walk(json.loads(result.stdout))
    return "\n".join(found)


def test_nothing_readable_reaches_temporal_and_the_codec_server_shows_it(
    e2e_tenant: Tenant, tmp_path: Path, temporal: TemporalDevServer
) -> None:
    marker = uuid.uuid4().hex[:12]
    secret_source = f"s3://vault-{marker}/orders.csv"
    tag_value = f"cost-centre-{marker}"
    failing_source = f"s3://failing-{marker}/orders.csv"
    killed_source = f"s3://killed-{marker}/orders.csv"
    missing_module = f"not_installed_{marker}"
    secrets = [secret_source, tag_value, failing_source, killed_source, missing_module]

    agent = AgentProcess(e2e_tenant, temporal, tmp_path, TETHER_TEMPORAL_ENCRYPTION_KEYS=K1).start()
    try:
        code = tmp_path / "reader.py"
        code.write_text(CODE)
        e2e_tenant.deploy("reader", python_file=str(code))
        assert wait_for_location(e2e_tenant, "reader")["status"] == "RUNNING"
        broken = tmp_path / "broken.py"
        broken.write_text(f"import {missing_module}\n")
        e2e_tenant.deploy("broken", python_file=str(broken))
        loc = wait_for_location(e2e_tenant, "broken")
        assert loc["status"] == "ERROR" and missing_module in loc["error"]["message"], loc

        ok = e2e_tenant.launch(
            "reader", "read", run_config={"source": secret_source}, tags={"team": tag_value}
        )
        failed = e2e_tenant.launch(
            "reader", "read", run_config={"source": failing_source, "fail": True}
        )
        killed = e2e_tenant.launch(
            "reader", "read", run_config={"source": killed_source, "sleep_seconds": 60}
        )
        assert wait_for_run(e2e_tenant, ok["id"])["status"] == "SUCCESS"
        done = wait_for_run(e2e_tenant, failed["id"])
        assert done["status"] == "FAILURE", done
        # The killed run's log tail (its "extracting ... from <source>" line) is what the
        # agent reports for a worker that dies.
        wait_for_run(e2e_tenant, killed["id"], ("STARTED",))
        launcher = ProcessLauncher(agent.state_dir)
        handle = launcher.find(f"run:{killed['id']}")
        assert handle is not None
        wait_until(
            lambda: any(killed_source in line for line in launcher.log_tail(handle, 50)),
            what="the killed run's log line",
        )
        os.kill(command_pid(handle.pid), signal.SIGKILL)
        assert wait_for_run(e2e_tenant, killed["id"])["status"] == "FAILURE"

        raw = raw_histories(temporal.address)
        run_histories = [wid for wid in raw if any(r["id"] in wid for r in (ok, failed, killed))]
        assert len(run_histories) == 3, sorted(raw)
        for secret in secrets:
            leaked = [wid for wid, data in raw.items() if secret.encode() in data]
            assert not leaked, f"{secret!r} in clear in {leaked}"
        assert all(METADATA_KEY_ID.encode() in data for data in raw.values())

        # Through the codec server, with its token, the CLI shows the payloads again: the
        # workflows' own inputs (a RunWorkflow's settings name its max-runtime tag). Nothing
        # the user's code printed, raised or failed to load with is among them: that text
        # never enters a history at all (tests/e2e/test_no_output_in_histories.py).
        in_payloads = "tether/max_runtime"
        assert not any(in_payloads.encode() in data for data in raw.values())
        codec = CodecServerProcess(K1, tmp_path / "codec-server.log")
        try:
            ids = sorted({wid.split()[0] for wid in raw if not wid.startswith("agent:")})
            with_token = ("--codec-endpoint", codec.url, "--codec-auth", f"Bearer {TOKEN}")
            without = ("--codec-endpoint", codec.url)
            seen = "".join(shown(temporal, wid, *with_token) for wid in ids)
            assert in_payloads in seen, "the payloads were not shown through the codec server"
            for secret in secrets:
                assert secret not in seen, f"{secret!r} is in a history"
            # Without the token the codec server refuses (and the CLI retries until its
            # command timeout).
            refused = shown(temporal, f"run:{ok['id']}", *without, "--command-timeout", "3s")
            assert in_payloads not in refused
            assert "refused /decode from 127.0.0.1: no valid token" in codec.log()
        finally:
            codec.stop()

        # Rotation: k2 encrypts from now on, k1 still decrypts. The restarted agent replays
        # the location workflows' k1 histories and goes on; new payloads carry k2.
        agent.stop()
        agent.env["TETHER_TEMPORAL_ENCRYPTION_KEYS"] = f"{K2},{K1}"
        agent.start()
        after = e2e_tenant.launch("reader", "read", run_config={"source": secret_source})
        assert wait_for_run(e2e_tenant, after["id"])["status"] == "SUCCESS"
        rotated = raw_histories(temporal.address)
        newest = next(data for wid, data in rotated.items() if after["id"] in wid)
        assert b"k2" in newest and secret_source.encode() not in newest

        # A codec server without the old key cannot read the k1 histories, and says which key.
        only_new = CodecServerProcess(K2, tmp_path / "codec-server-k2.log")
        try:
            auth = ("--codec-endpoint", only_new.url, "--codec-auth", f"Bearer {TOKEN}")
            old = shown(temporal, f"run:{ok['id']}", *auth, "--command-timeout", "3s")
            assert in_payloads not in old
            assert "encrypted with key 'k1', which this process does not have" in only_new.log()
        finally:
            only_new.stop()

        # Every history, k1 and k2 alike, replays on today's code with the rotated keys.
        replayer = Replayer(
            workflows=[AgentWorkflow, CodeLocationWorkflow, RunWorkflow, TickWorkflow],
            data_converter=data_converter(parse_keys(f"{K2},{K1}", "test")),
        )
        histories = decoded_histories(temporal.address, f"{K2},{K1}")
        assert len(histories) >= 6
        for history in histories:
            result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
            assert result.replay_failure is None, (history.workflow_id, result.replay_failure)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)
