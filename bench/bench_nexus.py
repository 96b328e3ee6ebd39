"""Nexus benchmark: what running a trivial job through the Nexus service tether.v1.Runs costs
over submitting it over REST and awaiting it.

Everything is real, as in bench_launch.py: a Temporal dev server with a second namespace for
the caller, the control plane (SQLite), one agent hosting the service with its Nexus token,
the trivial one-step job (launched warm), the endpoint made as `tether nexus endpoint create`
makes it. Runs alternate between the three ways, one at a time:

- Nexus: a caller workflow in the other namespace runs ``run_job`` and returns its result
  (tests/e2e/nexus_callers.py). Timed from just before the client starts the caller workflow
  until its result is back; and, from the caller's history, from NexusOperationScheduled to
  NexusOperationCompleted (the server's own timestamps: the operation alone).
- REST, polled: ``POST .../runs`` then ``GET .../runs/{id}`` every 10 ms until final, as a
  script would.
- REST, long-poll: ``POST .../runs`` then ``GET .../runs/{id}?wait_seconds=30`` (the same call
  the service's activity makes).

    .venv/bin/python -m bench.bench_nexus --runs 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine, percentile
from bench.bench_launch import stop_stack
from bench.launch_workload import JOB, LOCATION, TRIVIAL_LOCATION, ready_after_warm_up
from tests.agent_support import AgentProcess, TemporalDevServer
from tests.e2e.nexus_callers import CallerInput, RunJobCallerWorkflow
from tests.support import ControlPlane, Tenant
from tether_api.nexus import RunJobInput
from tether_cli.nexus_endpoint import Endpoint, ensure_endpoint, target_task_queue
from worker.temporal_binary import temporal_cli

CALLER_NAMESPACE = "nexus-caller"
CALLER_QUEUE = "bench-callers"
ENDPOINT = "tether-bench"
POLL_SECONDS = 0.010
FINAL = ("SUCCESS", "FAILURE", "CANCELED")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min {five:.2f})"


def stats(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):6.0f} ms, p90 {percentile(values, 90):6.0f} ms, "
        f"min {min(values):6.0f} ms"
    )


def start(tmp: Path) -> tuple[TemporalDevServer, ControlPlane, Tenant, AgentProcess]:
    temporal = TemporalDevServer(tmp, namespaces=(CALLER_NAMESPACE,)).start()
    cp: ControlPlane | None = None
    agent: AgentProcess | None = None
    try:
        cp = ControlPlane(tmp).start()
        tenant = cp.tenant(concurrency=10)
        token = tenant.nexus_token("bench")
        (tmp / "trivial.py").write_text(TRIVIAL_LOCATION)
        tenant.deploy(LOCATION, python_file=str(tmp / "trivial.py"))
        agent = AgentProcess(
            tenant,
            temporal,
            tmp,
            TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS=5,
            TETHER_NEXUS_TOKEN=token,
            TETHER_NEXUS_CALLERS=CALLER_NAMESPACE,
        ).start()
        ready_after_warm_up(tenant, "the trivial")
        ensure_endpoint(
            temporal_cli(),
            Endpoint(ENDPOINT, "default", target_task_queue(tenant.org, "prod", agent.task_queue)),
            ["--address", temporal.address],
        )
    except BaseException:
        stop_stack(temporal, cp, agent)
        raise
    return temporal, cp, tenant, agent


async def event_times(handle: Any, types: dict[int, str]) -> dict[str, Any]:
    """The first event of each type in ``types``: its name -> its server timestamp."""
    found: dict[str, Any] = {}
    async for event in handle.fetch_history_events():
        name = types.get(event.event_type)
        if name is not None and name not in found:
            found[name] = event.event_time.ToDatetime()
    return found


CALLER_EVENTS = {
    EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED: "scheduled",
    EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED: "started",
    EventType.EVENT_TYPE_NEXUS_OPERATION_COMPLETED: "completed",
}
BACKING_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "wf_started",
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "awaited",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "wf_completed",
}
SEGMENTS = [
    ("start handler: create the run, start NexusRunWorkflow", "scheduled", "wf_started"),
    ("the run, awaited by the activity, and its outcome read", "wf_started", "awaited"),
    ("the workflow completes", "awaited", "wf_completed"),
    ("the completion reaches the caller", "wf_completed", "completed"),
]


async def nexus_once(client: Client, agent_side: Client) -> tuple[float, dict[str, float]]:
    """(client-side ms, each segment of the operation in ms, from the servers' timestamps)."""
    started = time.perf_counter()
    handle = await client.start_workflow(
        RunJobCallerWorkflow.run,
        CallerInput(endpoint=ENDPOINT, job=RunJobInput(code_location=LOCATION, job=JOB)),
        id=f"bench-{uuid.uuid4().hex[:10]}",
        task_queue=CALLER_QUEUE,
    )
    result = await handle.result()
    elapsed = (time.perf_counter() - started) * 1000
    if result.status != "SUCCESS":
        raise RuntimeError(f"run {result.run_id} ended {result.status}")
    times = await event_times(handle, CALLER_EVENTS)
    backing = agent_side.get_workflow_handle(f"nexus-run:{result.run_id}")
    times.update(await event_times(backing, BACKING_EVENTS))

    def ms(a: str, b: str) -> float:
        return float((times[b] - times[a]).total_seconds() * 1000)

    parts = {label: ms(a, b) for label, a, b in SEGMENTS}
    parts["operation"] = ms("scheduled", "completed")
    return elapsed, parts


async def rest_once(http: httpx.AsyncClient, tenant: Tenant, long_poll: bool) -> float:
    started = time.perf_counter()
    r = await http.post(f"{tenant.dep_path}/runs", json={"code_location": LOCATION, "job": JOB})
    r.raise_for_status()
    run_id = r.json()["id"]
    while True:
        params = {"wait_seconds": 30} if long_poll else None
        run = (await http.get(f"{tenant.dep_path}/runs/{run_id}", params=params)).json()
        if run["status"] in FINAL:
            break
        if not long_poll:
            await asyncio.sleep(POLL_SECONDS)
    elapsed = (time.perf_counter() - started) * 1000
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"run {run_id} ended {run['status']}")
    return elapsed


async def measure(temporal: TemporalDevServer, tenant: Tenant, runs: int) -> dict[str, list[float]]:
    client = await Client.connect(
        temporal.address, namespace=CALLER_NAMESPACE, data_converter=pydantic_data_converter
    )
    agent_side = Client(client.service_client, namespace="default")
    figures: dict[str, list[float]] = {"nexus": [], "polled": [], "long": []}
    headers = {"Authorization": f"Bearer {tenant.user_token}"}
    async with (
        Worker(client, task_queue=CALLER_QUEUE, workflows=[RunJobCallerWorkflow]),
        httpx.AsyncClient(base_url=tenant.cp.url, headers=headers, timeout=60) as http,
    ):
        # One of each first: connections, caches, the caller worker's first tasks.
        await nexus_once(client, agent_side)
        await rest_once(http, tenant, long_poll=True)
        for _ in range(runs):
            elapsed, parts = await nexus_once(client, agent_side)
            figures["nexus"].append(elapsed)
            for label, value in parts.items():
                figures.setdefault(label, []).append(value)
            figures["polled"].append(await rest_once(http, tenant, long_poll=False))
            figures["long"].append(await rest_once(http, tenant, long_poll=True))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each way (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-nexus-"))
    print(f"machine: {machine()}; {load()} at the start")
    temporal, cp, tenant, agent = start(tmp)
    try:
        figures = asyncio.run(measure(temporal, tenant, args.runs))
    finally:
        stop_stack(temporal, cp, agent)
    nexus, polled, long = (statistics.median(figures[k]) for k in ("nexus", "polled", "long"))
    print(f"{args.runs} runs of each, the trivial job (warm), one at a time, alternating:")
    print(f"  Nexus, caller start -> result (client)        {stats(figures['nexus'])}")
    print(f"  Nexus operation, scheduled -> completed       {stats(figures['operation'])}")
    for label, _, _ in SEGMENTS:
        print(f"    {label:<56} p50 {statistics.median(figures[label]):4.0f} ms")
    print(f"  REST, POST -> final, polled every 10 ms       {stats(figures['polled'])}")
    print(f"  REST, POST -> final, long-poll                {stats(figures['long'])}")
    print(
        f"Nexus over REST, p50: {nexus / polled:.2f}x of polled (+{nexus - polled:.0f} ms), "
        f"{nexus / long:.2f}x of long-poll (+{nexus - long:.0f} ms); {load()} at the end"
    )
    if args.keep:
        print(f"kept {tmp}")


if __name__ == "__main__":
    main()
