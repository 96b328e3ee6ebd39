"""No text of user code in a Temporal history, in any log forwarding mode.

The README promises that a run's output, a step's error, a code server's load error and a
validation's refusal stay out of every workflow input, result, failure, signal, query and
search attribute: what the workflows decide on is the exit code and the launcher's account
of an exit; the text goes from the activity that read it straight to the control plane, as
far as the deployment's log settings let it.

A real agent with an encryption key runs, in each forwarding mode, a job that prints and
succeeds, one that prints and raises with a passed-through secret, one that prints the secret
and is killed, one that prints it and is terminated, and one that the code server refuses with
the secret in its reason; a location fails to load with the secret in its import error; and a
Dagster location (the same agent, workflows and launcher) runs a job that prints and logs
the secret and one that raises it with a cause, and another fails to load. Every
history of this test's workflows is then read with the key, every payload decoded (inputs,
results, failures' encoded attributes, markers, summaries), and searched for the secret and
for every line the user code printed or raised.
"""

import asyncio
import json
import os
import signal
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.support import Tenant, command_pid, wait_until
from worker.codec import EncryptionCodec, data_converter, new_key, parse_keys

pytestmark = pytest.mark.xdist_group("no-output-in-histories")

KEYS = f"hk:{new_key()}"

JOBS = """
import os
import time

from pydantic import BaseModel, field_validator
from tether_sdk import Definitions, job, step

SECRET = os.environ["HISTORY_SECRET"]


class Gate(BaseModel):
    word: str = "open"

    @field_validator("word")
    @classmethod
    def _open(cls, value: str) -> str:
        if value != "open":
            raise ValueError("REFUSED-{m} the gate wants " + SECRET)
        return value


@step
def talk() -> None:
    print("PRINTED-{m} all is well", flush=True)


@step
def boom() -> None:
    print("PRINTED-{m} about to fail with " + SECRET, flush=True)
    raise RuntimeError("RAISED-{m} " + SECRET)


@step
def linger() -> None:
    print("PRINTED-{m} lingering with " + SECRET, flush=True)
    time.sleep(120)


@step
def gated(config: Gate) -> None:
    print("PRINTED-{m} through the gate", flush=True)


defs = Definitions(
    jobs=[
        job("talks", steps=[talk]),
        job("fails", steps=[talk, boom]),
        job("lingers", steps=[linger]),
        job("gated", steps=[gated], config=Gate),
    ]
)
"""

# The same, as a Dagster project: its runs and its load error go the same way.
DAGSTER_JOBS = """
import os

import dagster as dg

SECRET = os.environ["HISTORY_SECRET"]


@dg.op
def talk(context) -> None:
    print("PRINTED-{m} dagster all is well", flush=True)
    context.log.info("PRINTED-{m} dagster logs " + SECRET)


@dg.op
def boom() -> None:
    try:
        raise KeyError("RAISED-{m} cause " + SECRET)
    except KeyError as exc:
        raise RuntimeError("RAISED-{m} dagster " + SECRET) from exc


@dg.job
def dg_talks():
    talk()


@dg.job
def dg_fails():
    boom()


defs = dg.Definitions(jobs=[dg_talks, dg_fails])
"""

BROKEN = """
import os

print("PRINTED-{m} loading", flush=True)
raise RuntimeError("LOADFAIL-{m} " + os.environ["HISTORY_SECRET"])
"""


def decoded_text(address: str, keys: str, ids: list[str], org: str) -> dict[str, str]:
    """Every history of the given run IDs and of the organization's workflows, as one text
    each: the events as JSON, and each payload in them decrypted with the key and decoded."""
    parsed = parse_keys(keys, "test")
    codec = EncryptionCodec(parsed)

    def payloads_of(node: Any, found: list[str]) -> None:
        if isinstance(node, dict):
            if "metadata" in node and "data" in node:
                payload = json_format.ParseDict(node, Payload())
                (plain,) = codec.decrypt_all([payload])
                found.append(plain.data.decode(errors="replace"))
            for value in node.values():
                payloads_of(value, found)
        elif isinstance(node, list):
            for value in node:
                payloads_of(value, found)

    async def read() -> dict[str, str]:
        client = await Client.connect(address, data_converter=data_converter(parsed))
        texts: dict[str, str] = {}
        async for wf in client.list_workflows():
            if org not in wf.id and not any(run_id in wf.id for run_id in ids):
                continue
            history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            raw = [json_format.MessageToDict(event) for event in history.events]
            found = [json.dumps(raw)]
            payloads_of(raw, found)
            # Payload data in the JSON is base64: decoded above; the raw JSON is kept too,
            # for what is not a payload (IDs, names, search attributes' own encoding).
            texts[f"{wf.id} {wf.run_id}"] = "\n".join(found)
        # Query answers are not in a history: ask the live ones too (a location's state).
        for wf_id in [w for w in texts if w.startswith("code-location:")]:
            handle = client.get_workflow_handle(wf_id.split()[0])
            desc = await handle.describe()
            if desc.status is not None and desc.status.name == "RUNNING":
                state = await handle.query("state")
                texts[wf_id] += "\n" + json.dumps(state, default=str)
        return texts

    return asyncio.run(read())


class Case:
    def __init__(self, tenant: Tenant, agent: AgentProcess, tmp_path: Path, marker: str) -> None:
        self.tenant = tenant
        self.agent = agent
        self.marker = marker
        self.code = tmp_path / f"historyjobs_{marker}.py"
        self.code.write_text(textwrap.dedent(JOBS.format(m=marker)))
        self.dagster_code = tmp_path / f"historydagster_{marker}.py"
        self.dagster_code.write_text(textwrap.dedent(DAGSTER_JOBS.format(m=marker)))

    def set_mode(self, forwarding: str, redact_errors: bool = False) -> None:
        with self.tenant.user() as c:
            settings = {"forwarding": forwarding, "redact_errors": redact_errors}
            r = c.patch(self.tenant.dep_path, json={"log_settings": settings})
            assert r.status_code == 200, r.text

    def launch(self, job: str, location: str = "jobs", **body: Any) -> str:
        return str(self.tenant.launch(location, job, **body)["id"])

    def wait_printed(self, run_id: str) -> ProcessLauncher:
        wait_for_run(self.tenant, run_id, ("STARTED",))
        launcher = ProcessLauncher(self.agent.state_dir)
        handle = launcher.find(f"run:{run_id}")
        assert handle is not None
        wait_until(
            lambda: any(f"PRINTED-{self.marker}" in line for line in launcher.log_tail(handle, 20)),
            what=f"run {run_id}'s printed line",
        )
        return launcher


@pytest.fixture
def case(e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path) -> Iterator[Case]:
    marker = uuid.uuid4().hex[:12]
    agent = AgentProcess(
        e2e_tenant,
        temporal_server,
        tmp_path,
        TETHER_TEMPORAL_ENCRYPTION_KEYS=KEYS,
        HISTORY_SECRET=f"hsecret-{uuid.uuid4().hex}",
    ).start()
    try:
        yield Case(e2e_tenant, agent, tmp_path, marker)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


def test_no_printed_line_raised_error_or_secret_in_any_history(
    case: Case, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    tenant, m = case.tenant, case.marker
    secret = case.agent.env["HISTORY_SECRET"]
    tenant.deploy("jobs", python_file=str(case.code), passthrough_env=["HISTORY_SECRET"])
    assert wait_for_location(tenant, "jobs")["status"] == "RUNNING"
    broken = tmp_path / f"broken_{m}.py"
    broken.write_text(textwrap.dedent(BROKEN.format(m=m)))
    tenant.deploy("broken", python_file=str(broken), passthrough_env=["HISTORY_SECRET"])
    # A Dagster location: its runs, and a load error of the same kind.
    dagster = {"kind": "dagster", "passthrough_env": ["HISTORY_SECRET"]}
    tenant.deploy("dg", python_file=str(case.dagster_code), **dagster)
    tenant.deploy("dg-broken", python_file=str(broken), **dagster)
    assert wait_for_location(tenant, "dg")["status"] == "RUNNING"
    for name in ("broken", "dg-broken"):
        loc = wait_for_location(tenant, name)
        assert loc["status"] == "ERROR" and f"LOADFAIL-{m}" in loc["error"]["message"], loc
        assert secret not in json.dumps(loc), "the load error reached the control plane unmasked"

    runs: dict[str, dict[str, str]] = {}
    for mode in ("all", "structured", "local"):
        case.set_mode(mode, redact_errors=mode == "structured")
        ids = {
            "talks": case.launch("talks"),
            "fails": case.launch("fails"),
            "killed": case.launch("lingers"),
            "terminated": case.launch("lingers"),
            "refused": case.launch("gated", run_config={"word": "shut"}),
            "dg-talks": case.launch("dg_talks", "dg"),
            "dg-fails": case.launch("dg_fails", "dg"),
        }
        launcher = case.wait_printed(ids["killed"])
        handle = launcher.find(f"run:{ids['killed']}")
        assert handle is not None
        os.kill(command_pid(handle.pid), signal.SIGKILL)
        case.wait_printed(ids["terminated"])
        with tenant.user() as c:
            r = c.post(f"{tenant.dep_path}/runs/{ids['terminated']}/terminate")
            assert r.status_code == 202, r.text
        final = {what: wait_for_run(tenant, run_id) for what, run_id in ids.items()}
        statuses = {what: run["status"] for what, run in final.items()}
        assert statuses == {
            "talks": "SUCCESS",
            "fails": "FAILURE",
            "killed": "FAILURE",
            "terminated": "CANCELED",
            "refused": "FAILURE",
            "dg-talks": "SUCCESS",
            "dg-fails": "FAILURE",
        }, (mode, final)
        # The text still reaches the control plane, by the activity, as the mode allows:
        # the refusal's reason (masked) always; a killed worker's last lines only in 'all'.
        refused = final["refused"]["status_message"]
        assert secret not in refused, refused
        if mode == "structured":  # with redact_errors: an error ID, the text on the agent
            assert "error ID" in refused and f"REFUSED-{m}" not in refused, refused
        else:
            assert f"REFUSED-{m}" in refused, refused
        killed = final["killed"]["status_message"]
        assert ("last log lines" in killed) == (mode == "all"), (mode, killed)
        if mode == "all":
            assert f"PRINTED-{m} lingering" in killed and secret not in killed, killed
        runs[mode] = ids

    all_ids = [run_id for ids in runs.values() for run_id in ids.values()]
    texts = decoded_text(temporal_server.address, KEYS, all_ids, tenant.org)
    run_histories = [w for w in texts if w.startswith("run:")]
    assert len(run_histories) == len(all_ids), sorted(texts)
    for name in ("broken", "dg-broken"):
        assert any(w.startswith("code-location:") and f":{name} " in w for w in texts), name
    # Decoding worked: the payloads' own content is there in clear (not hollow).
    assert any(f'"run_id":"{all_ids[0]}"' in text for text in texts.values())
    needles = [secret, f"PRINTED-{m}", f"RAISED-{m}", f"REFUSED-{m}", f"LOADFAIL-{m}"]
    for needle in needles:
        leaked = [w for w, text in texts.items() if needle in text]
        assert not leaked, f"{needle!r} is in the history of {leaked}"
