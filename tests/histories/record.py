"""Record the workflow histories that ``tests/workflows/test_replay.py`` replays.

    python -m tests.histories.record                 # every scenario
    python -m tests.histories.record run_success     # only these

Starts the real stack in a temporary directory (a Temporal dev server, a control plane on
SQLite, one agent process), drives each scenario through the user API and Temporal, and
writes each finished workflow's history to ``tests/histories/<scenario>.json``. Everything
it started is stopped by PID at the end, also on failure. See README.md in this directory
for when (not) to re-record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    events,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.conftest import NEXUS_CALLER_NAMESPACE
from tests.e2e.nexus_callers import CallerInput, RunJobCallerWorkflow
from tests.support import ControlPlane, Tenant, wait_until
from tether_api.nexus import RunJobInput
from tether_cli.nexus_endpoint import Endpoint, ensure_endpoint, target_task_queue
from worker.temporal_binary import temporal_cli
from workflows import names
from workflows.models import CodeLocationState

HERE = Path(__file__).resolve().parent
QUICKSTART = {"module": "tether_sdk.examples.quickstart"}
BROKEN = {"module": "tether_sdk.examples.broken"}
SENSING = HERE.parent / "e2e" / "locations" / "sensing.py"
NEXUS_JOBS = HERE.parent / "e2e" / "locations" / "nexus_jobs.py"
NEXUS_ENDPOINT = "tether-recorder"
ETL_CONFIG = {"source": "s3://b/o.csv"}
RESULT_TIMEOUT = 120.0
# Agents count as lost after 3 s without taking a task from their own queue (default 60 s).
HOST_LOST_QUICKLY: dict[str, Any] = {
    "TETHER_RUN_HOST_LOST_AFTER_SECONDS": 3,
    "TETHER_CODE_LOCATION_HOST_LOST_AFTER_SECONDS": 3,
    "TETHER_RUN_LOST_HOST_CHECK_SECONDS": 1,
}

log = logging.getLogger("tests.histories.record")


class Session:
    """One tenant on the running stack, and a Temporal client to read histories with."""

    def __init__(self, tenant: Tenant, agent: AgentProcess, client: Client, out: Path) -> None:
        self.tenant = tenant
        self.agent = agent
        self.client = client
        self.out = out

    # --- helpers -----------------------------------------------------------------------------

    def location_handle(self, name: str) -> WorkflowHandle[Any, Any]:
        workflow_id = names.code_location_workflow_id(self.tenant.org, self.tenant.deployment, name)
        return self.client.get_workflow_handle(workflow_id)

    def run_handle(self, run_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(names.run_workflow_id(run_id))

    def deploy_running(self, name: str, spec: dict[str, str]) -> None:
        self.tenant.deploy(name, **spec)
        loc = wait_for_location(self.tenant, name, ("RUNNING",), timeout=90)
        log.info("%s RUNNING (generation %s)", name, loc["generation"])

    def remove(self, name: str) -> None:
        with self.tenant.user() as c:
            r = c.delete(f"{self.tenant.dep_path}/code-locations/{name}")
            assert r.status_code == 202, r.text

    async def save(self, scenario: str, handle: WorkflowHandle[Any, Any]) -> None:
        """Wait for the workflow to close, then write its history."""
        await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
        history = await handle.fetch_history()
        path = self.out / f"{scenario}.json"
        path.write_text(history.to_json() + "\n")
        log.info("wrote %s: %d events, %d bytes", path, len(history.events), path.stat().st_size)

    async def query_state(self, name: str) -> CodeLocationState:
        state: CodeLocationState = await self.location_handle(name).query(
            names.QUERY_STATE, result_type=CodeLocationState
        )
        return state

    async def until_state(
        self, name: str, done: Callable[[CodeLocationState], bool], what: str
    ) -> CodeLocationState:
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            state = await self.query_state(name)
            if done(state):
                return state
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{name}: timed out waiting for {what}; state {state}")
            await asyncio.sleep(0.2)

    # --- scenarios ---------------------------------------------------------------------------

    async def code_location_redeploy_remove(self) -> None:
        """Deploy, redeploy by the Temporal signal, remove: the workflow completes."""
        name = "cycle"
        self.deploy_running(name, QUICKSTART)
        await self.location_handle(name).signal(names.SIGNAL_REDEPLOY)
        await self.until_state(
            name, lambda s: s.deploys == 2 and s.status == "RUNNING", "RUNNING on server #2"
        )
        self.remove(name)
        await self.save("code_location_redeploy_remove", self.location_handle(name))

    async def code_location_import_error_fixed(self) -> None:
        """A module that cannot be imported (ERROR, retried with backoff), fixed by a new
        generation pointing at a working module, then removed."""
        name = "fixme"
        self.tenant.deploy(name, **BROKEN)
        wait_for_location(self.tenant, name, ("ERROR",), timeout=90)
        # Let it retry at least once (the agent's backoff starts at 1 s).
        await self.until_state(name, lambda s: s.deploys >= 2, "a retry after the error")
        self.deploy_running(name, QUICKSTART)
        self.remove(name)
        await self.save("code_location_import_error_fixed", self.location_handle(name))

    async def nexus_operation(
        self, scenario: str, job: str, cancel: bool = False, **config: Any
    ) -> None:
        """A caller workflow in the caller namespace runs ``job`` through the Nexus endpoint;
        the operation's NexusRunWorkflow is saved (``cancel``: the caller is canceled once
        the run has started)."""
        if not any(loc["name"] == "nexus_jobs" for loc in self.locations()):
            self.deploy_running("nexus_jobs", {"python_file": str(NEXUS_JOBS)})
        caller = await Client.connect(
            self.client.service_client.config.target_host,
            namespace=NEXUS_CALLER_NAMESPACE,
            data_converter=pydantic_data_converter,
        )
        async with Worker(caller, task_queue="recorder-callers", workflows=[RunJobCallerWorkflow]):
            handle = await caller.start_workflow(
                RunJobCallerWorkflow.run,
                CallerInput(
                    endpoint=NEXUS_ENDPOINT,
                    job=RunJobInput(code_location="nexus_jobs", job=job, run_config=config),
                ),
                id=f"recorder-{scenario}",
                task_queue="recorder-callers",
            )
            run_id = await self.caller_run(handle.id)
            if cancel:
                await asyncio.to_thread(
                    wait_for_run, self.tenant, run_id, ("STARTED",), RESULT_TIMEOUT
                )
                await handle.cancel()
            with contextlib.suppress(WorkflowFailureError):
                await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
        backing = self.client.get_workflow_handle(names.nexus_run_workflow_id(run_id))
        if cancel or job == "fails":
            with contextlib.suppress(WorkflowFailureError):
                await backing.result()
        history = await backing.fetch_history()
        path = self.out / f"{scenario}.json"
        path.write_text(history.to_json() + "\n")
        log.info("wrote %s: %d events", path, len(history.events))

    def locations(self) -> list[dict[str, Any]]:
        with self.tenant.user() as c:
            r = c.get(f"{self.tenant.dep_path}/code-locations")
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

    async def caller_run(self, workflow_id: str) -> str:
        """The run the caller's operation created (found by the caller, as users do)."""
        deadline = asyncio.get_running_loop().time() + RESULT_TIMEOUT
        while True:
            with self.tenant.user() as c:
                runs = c.get(
                    f"{self.tenant.dep_path}/runs", params={"caller_workflow_id": workflow_id}
                ).json()["runs"]
            if runs:
                return str(runs[0]["id"])
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no run of caller {workflow_id}")
            await asyncio.sleep(0.1)

    async def nexus_run_success(self) -> None:
        await self.nexus_operation("nexus_run_success", "load_orders")

    async def nexus_run_failed(self) -> None:
        await self.nexus_operation("nexus_run_failed", "fails")

    async def nexus_run_canceled(self) -> None:
        await self.nexus_operation("nexus_run_canceled", "nap", cancel=True, seconds=60)

    async def run_success(self) -> None:
        self.deploy_running("quick", QUICKSTART)
        run = self.tenant.launch("quick", "etl", run_config=ETL_CONFIG)
        done = wait_for_run(self.tenant, run["id"], timeout=90)
        assert done["status"] == "SUCCESS", done
        await self.save("run_success", self.run_handle(run["id"]))

    async def run_success_warm(self) -> None:
        """run_success with a warm launch (the default): prepare names the code server, the
        launch forks the worker from it; the run's workflow was started eagerly."""
        self.deploy_running("quick", QUICKSTART)
        run = self.tenant.launch("quick", "etl", run_config=ETL_CONFIG)
        done = wait_for_run(self.tenant, run["id"], timeout=90)
        assert done["status"] == "SUCCESS", done
        start = next(e for e in events(self.tenant, run["id"]) if e["type"] == "RUN_START")
        assert start["data"]["launch"] == "warm", start
        await self.save("run_success_warm", self.run_handle(run["id"]))

    async def run_invalid_config(self) -> None:
        self.deploy_running("quick", QUICKSTART)
        run = self.tenant.launch("quick", "etl", run_config={})
        done = wait_for_run(self.tenant, run["id"], timeout=90)
        assert done["status"] == "FAILURE", done
        await self.save("run_invalid_config", self.run_handle(run["id"]))

    async def run_terminated(self, save_as: str = "run_terminated") -> None:
        self.deploy_running("quick", QUICKSTART)
        run = self.tenant.launch("quick", "etl", run_config={**ETL_CONFIG, "sleep_seconds": 60})
        wait_for_run(self.tenant, run["id"], ("STARTED",), timeout=90)
        # Terminate once the worker is inside the slow step: it stops a live worker.
        wait_until(
            lambda: any(
                "sleeping" in (e.get("message") or "") for e in events(self.tenant, run["id"])
            ),
            timeout=60,
            what="the transform step sleeping",
        )
        with self.tenant.user() as c:
            r = c.post(f"{self.tenant.dep_path}/runs/{run['id']}/terminate")
            assert r.status_code == 202, r.text
        done = wait_for_run(self.tenant, run["id"], timeout=90)
        assert done["status"] == "CANCELED", done
        await self.save(save_as, self.run_handle(run["id"]))

    async def run_success_host_affinity(self) -> None:
        """run_success on an agent with a host queue of its own, search attributes and the
        patches of that release."""
        self.deploy_running("quick", QUICKSTART)
        run = self.tenant.launch("quick", "etl", run_config=ETL_CONFIG)
        done = wait_for_run(self.tenant, run["id"], timeout=90)
        assert done["status"] == "SUCCESS", done
        await self.save("run_success_host_affinity", self.run_handle(run["id"]))

    async def run_terminated_waits_for_cancel(self) -> None:
        """run_terminated, with the patch that waits for the canceled watch."""
        await self.run_terminated(save_as="run_terminated_waits_for_cancel")

    async def run_terminated_stops_first(self) -> None:
        """run_terminated, with the patch that stops the worker before it waits for the
        canceled watch."""
        await self.run_terminated(save_as="run_terminated_stops_first")

    async def host_lost(self) -> None:
        """The agent holding a run worker and a code server is killed and stays away while
        a second agent (another state directory, as on another host) carries on: the run
        follows its worker's heartbeats to SUCCESS, the location starts a new server on the
        second agent; the first agent comes back and its old server is stopped."""
        name = "moving"
        self.deploy_running(name, QUICKSTART)
        run = self.tenant.launch(name, "etl", run_config={**ETL_CONFIG, "sleep_seconds": 15})
        wait_for_run(self.tenant, run["id"], ("STARTED",), timeout=90)
        first = self.agent
        second = AgentProcess(
            self.tenant,
            first.temporal,
            first.state_dir.parent,
            "agent-2",
            state_dir=first.state_dir.parent / "state-2",
            **HOST_LOST_QUICKLY,
        ).start()
        try:
            first.kill()
            done = wait_for_run(self.tenant, run["id"], timeout=120)
            assert done["status"] == "SUCCESS", done
            await self.until_state(
                name,
                lambda s: s.server is not None and s.server.agent == "agent-2",
                "a server on agent-2",
            )
            first.start()
            await self.until_state(name, lambda s: not s.abandoned, "the old server stopped")
            self.remove(name)
            await self.save("run_host_lost", self.run_handle(run["id"]))
            await self.save("code_location_host_lost", self.location_handle(name))
        finally:
            second.stop()
            stop_launched(second.state_dir)

    async def sensor_tick(self) -> None:
        """A sensor's TickWorkflow: locate the code server; on its host, read the tick's
        request, evaluate it and report the run request the control plane then creates a run
        for. (``sensor_tick.json`` was recorded before the patch
        ``tick-evaluates-and-reports-on-host``, and is kept for its old path.)"""
        inbox = Path(tempfile.mkdtemp(prefix="tether-inbox-"))
        (inbox / "a.csv").write_text("1")
        self.tenant.deploy("sensing", python_file=str(SENSING), env={"SENSING_INBOX": str(inbox)})
        wait_for_location(self.tenant, "sensing", ("RUNNING",), timeout=90)

        def made_a_run() -> dict[str, Any] | None:
            with self.tenant.user() as c:
                found = c.get(f"{self.tenant.dep_path}/sensors/sensing/inbox/ticks").json()
            return next((t for t in found if t["run_ids"]), None)

        tick = wait_until(made_a_run, timeout=90, what="a tick of sensor inbox with a run")
        self.remove("sensing")
        await self.save("sensor_tick_held", self.client.get_workflow_handle(tick["workflow_id"]))

    async def agent_workflow(self) -> None:
        """The agent's own workflow, after it dispatched everything above; the ``stop``
        signal ends it after the current poll. Runs last. (``agent.json`` was recorded before
        the patch ``agent-poll-dispatches``, and is kept for its old path.)"""
        handle = self.client.get_workflow_handle(self.agent.workflow_id)
        await handle.signal(names.SIGNAL_STOP)
        await self.save("agent_poll_dispatches", handle)


SCENARIOS: dict[str, Callable[[Session], Awaitable[None]]] = {
    "code_location_redeploy_remove": Session.code_location_redeploy_remove,
    "code_location_import_error_fixed": Session.code_location_import_error_fixed,
    "run_success": Session.run_success,
    "run_success_warm": Session.run_success_warm,
    "run_invalid_config": Session.run_invalid_config,
    "run_terminated": Session.run_terminated,
    "run_success_host_affinity": Session.run_success_host_affinity,
    "run_terminated_waits_for_cancel": Session.run_terminated_waits_for_cancel,
    "run_terminated_stops_first": Session.run_terminated_stops_first,
    "host_lost": Session.host_lost,
    "sensor_tick_held": Session.sensor_tick,
    "nexus_run_success": Session.nexus_run_success,
    "nexus_run_failed": Session.nexus_run_failed,
    "nexus_run_canceled": Session.nexus_run_canceled,
    "agent_poll_dispatches": Session.agent_workflow,  # last: it ends the agent's workflow
}


async def record(scenarios: list[str], out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="tether-histories-") as tmp:
        workdir = Path(tmp)
        for sub in ("temporal", "controlplane", "agent"):
            (workdir / sub).mkdir()
        temporal = TemporalDevServer(workdir / "temporal")
        controlplane: ControlPlane | None = None
        agent: AgentProcess | None = None
        try:
            temporal.namespaces = (NEXUS_CALLER_NAMESPACE,)
            temporal.start()
            controlplane = ControlPlane(
                workdir / "controlplane",
                run_start_timeout_seconds=3600,
                run_heartbeat_timeout_seconds=3600,
            ).start()
            tenant = controlplane.tenant()
            agent = AgentProcess(
                tenant,
                temporal,
                workdir / "agent",
                TETHER_NEXUS_TOKEN=tenant.nexus_token("recorder"),
                TETHER_NEXUS_CALLERS=NEXUS_CALLER_NAMESPACE,
                **HOST_LOST_QUICKLY,
            ).start()
            ensure_endpoint(
                temporal_cli(),
                Endpoint(
                    NEXUS_ENDPOINT,
                    "default",
                    target_task_queue(tenant.org, tenant.deployment, agent.task_queue),
                ),
                ["--address", temporal.address],
            )
            client = await Client.connect(temporal.address, data_converter=pydantic_data_converter)
            session = Session(tenant, agent, client, out)
            for scenario in scenarios:
                log.info("scenario %s", scenario)
                await SCENARIOS[scenario](session)
        except BaseException:
            if agent is not None:
                sys.stderr.write(f"--- agent log (tail) ---\n{agent.log()[-4000:]}\n")
            raise
        finally:
            if agent is not None:
                agent.stop()
                stop_launched(agent.state_dir)
            if controlplane is not None:
                controlplane.stop()
            temporal.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"any of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the JSON files")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    chosen = [s for s in SCENARIOS if s in args.scenarios] if args.scenarios else list(SCENARIOS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(record(chosen, args.out))


if __name__ == "__main__":
    main()
