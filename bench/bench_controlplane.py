"""Control plane benchmark: event ingestion and enqueue-to-long-poll latency.

Everything is real: the control plane runs as `tether controlplane serve` in a subprocess on
127.0.0.1, and the ingestion figure uses a real `tether run-worker` process.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import ControlPlane, Tenant, wait_until

CHATTY = "tether_sdk.examples.chatty"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bench_latency(tenant: Tenant, n: int) -> dict[str, float]:
    tenant.deploy("latency", module=CHATTY)
    for r in tenant.poll(max_requests=100):
        with tenant.agent() as a:
            a.post(f"/api/v1/agent/requests/{r['id']}/ack")
    latencies: list[float] = []
    posts: list[float] = []
    user = tenant.user()
    agent = tenant.agent()
    path = f"{tenant.dep_path}/code-locations/latency/redeploy"
    for _ in range(n):
        got: dict[str, float] = {}
        ready = threading.Event()

        def poll(got: dict[str, float] = got, ready: threading.Event = ready) -> None:
            ready.set()
            r = agent.post(
                "/api/v1/agent/requests/poll",
                json={"agent_name": "bench", "wait_seconds": 20},
                timeout=30,
            )
            got["at"] = time.perf_counter()
            got["id"] = float(r.json()["requests"][0]["id"])

        poller = threading.Thread(target=poll)
        poller.start()
        ready.wait()
        time.sleep(0.02)  # the poll is now holding on the server
        start = time.perf_counter()
        user.post(path).raise_for_status()
        posts.append(time.perf_counter() - start)
        poller.join(30)
        latencies.append(got["at"] - start)
        agent.post(f"/api/v1/agent/requests/{int(got['id'])}/ack").raise_for_status()
    user.close()
    agent.close()
    ms = [x * 1000 for x in latencies]
    return {
        "p50_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "enqueue_call_p50_ms": statistics.median(x * 1000 for x in posts),
    }


def bench_ingest_server(tenant: Tenant, events: int, repeats: int) -> float:
    """Events/s for pre-built batches posted by one client (the server's share)."""
    tenant.deploy("ingest", module=CHATTY)
    rates = []
    for _ in range(repeats):
        run = tenant.launch("ingest", job="chatty")["id"]
        token = tenant.run_token(run)
        batches = [
            {
                "events": [
                    {
                        "seq": s,
                        "type": "LOG",
                        "timestamp": "2026-01-01T00:00:00Z",
                        "level": "INFO",
                        "step": "chatter",
                        "message": f"line {s}",
                    }
                    for s in range(b, min(b + 1000, events + 1))
                ]
            }
            for b in range(1, events + 1, 1000)
        ]
        with httpx.Client(
            base_url=tenant.cp.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as w:
            start = time.perf_counter()
            for batch in batches:
                w.post(f"/api/v1/runs/{run}/events", json=batch).raise_for_status()
            rates.append(events / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_ingest_worker(tenant: Tenant, events: int, repeats: int) -> tuple[float, list[float]]:
    """Events/s end to end: a real run worker logging ``events`` lines."""
    tenant.deploy("chatty", module=CHATTY)
    rates = []
    for _ in range(repeats):
        run = tenant.launch("chatty", job="chatty", run_config={"lines": events})["id"]
        token = tenant.run_token(run)
        env = {
            **os.environ,
            "TETHER_RUN_ID": run,
            "TETHER_CONTROL_PLANE_URL": tenant.cp.url,
            "TETHER_RUN_TOKEN": token,
            "TETHER_MODULE": CHATTY,
        }
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "tether_sdk.run_worker"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"run worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
        wait_until(lambda run=run: tenant.run(run)["status"] == "SUCCESS", timeout=60)
        elapsed = time.perf_counter() - start
        with tenant.user() as c:
            page = c.get(
                f"{tenant.dep_path}/runs/{run}/events", params={"after": events, "limit": 1000}
            ).json()
            stored = page["last_seq"]
        total = stored  # every event the run produced (logs plus run/step events)
        assert total >= events, f"only {total} events stored"
        rates.append(total / elapsed)
    return statistics.median(rates), rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cp = ControlPlane(
            Path(tmp),
            database_url=args.db,
            run_start_timeout_seconds=3600,
            recheck_interval_seconds=10,
        ).start()
        try:
            tenant = cp.tenant(concurrency=1000)
            print(f"machine: {machine()}")
            print(f"store:   {'SQLite' if args.db is None else args.db.split(':')[0]}")
            lat = bench_latency(tenant, args.requests)
            print(
                f"request latency, enqueue -> long-poll return, {args.requests} requests: "
                f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, "
                f"max {lat['max_ms']:.2f} ms "
                f"(the enqueueing call itself: p50 {lat['enqueue_call_p50_ms']:.2f} ms)  "
                f"target p50 < 10 ms"
            )
            server = bench_ingest_server(tenant, args.events, args.repeats)
            print(
                f"ingestion, server only, {args.events} events in batches of 1000: "
                f"median {server:,.0f} events/s over {args.repeats} runs"
            )
            median, rates = bench_ingest_worker(tenant, args.events, args.repeats)
            print(
                f"ingestion, end to end (real run worker, {args.events} log lines): "
                f"median {median:,.0f} events/s over {args.repeats} runs "
                f"(all: {', '.join(f'{r:,.0f}' for r in rates)})  target >= 20,000 events/s"
            )
        finally:
            cp.stop()


if __name__ == "__main__":
    main()
