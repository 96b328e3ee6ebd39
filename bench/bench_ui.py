"""Web UI benchmark: first paint of each main page, in a real Chromium, with 1,000 runs stored.

The control plane runs as `tether controlplane serve` (SQLite) in a subprocess on 127.0.0.1.
The store is seeded through the API, as a user, an agent and a run worker would fill it: one
code location reporting the bundled example's definitions, 1,000 runs, and one run with 300
events across its three steps. Each page is then opened `--repeat` times in a fresh tab of one
signed-in browser context; the figure is the browser's own first-contentful-paint time
(navigation start to first paint), with the server's part (request sent to response end) beside
it. Target: first paint under 200 ms at the median for every page.

    .venv/bin/python bench/bench_ui.py [--runs 1000] [--repeat 15] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine
from tests.support import ControlPlane, Tenant

TARGET_MS = 200.0
# The page's first contentful paint (waiting for it if the entry is not there yet) and the
# server's part of the navigation, both in ms.
PAINT_JS = """() => new Promise((resolve) => {
  const nav = performance.getEntriesByType("navigation")[0];
  const done = (fcp) => resolve([fcp, nav.responseEnd - nav.requestStart]);
  const seen = performance.getEntriesByName("first-contentful-paint")[0];
  if (seen) return done(seen.startTime);
  new PerformanceObserver((list) => {
    const entry = list.getEntriesByName("first-contentful-paint")[0];
    if (entry) done(entry.startTime);
  }).observe({ type: "paint", buffered: true });
  setTimeout(() => done(NaN), 5000);
})"""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


def seed(tenant: Tenant, runs: int) -> str:
    """The example location with its definitions, ``runs`` runs, and one run with events."""
    from tether_sdk.examples.quickstart import defs

    tenant.deploy("quick")
    snapshot = defs.snapshot().model_dump(mode="json")
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={"status": "RUNNING", "snapshot": snapshot, "generation": 1},
        )
        assert r.status_code == 200, r.text
    with tenant.user() as user:
        user.patch(tenant.dep_path, json={"run_concurrency_limit": 5})
        ids = []
        for i in range(runs):
            r = user.post(
                f"{tenant.dep_path}/runs",
                json={
                    "code_location": "quick",
                    "job": "etl",
                    "run_config": {"source": f"s{i}"},
                    "tags": {"team": "data" if i % 2 else "ops"},
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    run_id = ids[0]  # admitted first, so STARTING: a worker may report it
    token = tenant.run_token(run_id)
    start = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for step_index, step in enumerate(("extract", "transform", "load")):
        events.append({"type": "STEP_START", "step": step})
        events += [
            {"type": "LOG", "step": step, "level": "INFO", "message": f"{step} line {n}"}
            for n in range(98)
        ]
        events.append({"type": "STEP_SUCCESS", "step": step, "data": {"duration": 0.1}})
        del step_index
    events.append({"type": "RUN_SUCCESS"})
    batch = [
        {"seq": n + 1, "timestamp": (start + timedelta(milliseconds=n)).isoformat(), **e}
        for n, e in enumerate(events)
    ]
    from tests.support import client

    with client(tenant.cp.url, token) as worker:
        r = worker.post(f"/api/v1/runs/{run_id}/events", json={"events": batch})
        assert r.status_code == 200, r.text
    return run_id


def measure(
    base: str, sign_in: str, pages: dict[str, str], repeat: int, chromium: str
) -> dict[str, list[tuple[float, float]]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[tuple[float, float]]] = {name: [] for name in pages}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base)
        first = context.new_page()
        first.goto(sign_in)
        first.get_by_role("button", name="Sign in").click()
        first.wait_for_url(lambda url: "/sign-in" not in url)
        first.close()
        for _ in range(repeat):
            for name, path in pages.items():
                tab = context.new_page()
                tab.goto(path, wait_until="load")
                paint, server = tab.evaluate(PAINT_JS)
                found[name].append((paint, server))
                tab.close()
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--chromium", default=os.environ.get("TETHER_TEST_CHROMIUM", "/usr/bin/chromium")
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tether-bench-ui-") as tmp:
        cp = ControlPlane(Path(tmp)).start()
        try:
            tenant = cp.tenant()
            began = time.monotonic()
            run_id = seed(tenant, args.runs)
            print(f"seeded {args.runs} runs in {time.monotonic() - began:.1f} s")
            with tenant.user() as user:
                link = user.post("/api/v1/sign-in-links", json={}).json()["path"]
            dep = f"/d/{tenant.deployment}"
            pages = {
                "overview": dep,
                "runs": f"{dep}/runs",
                "runs, filtered": f"{dep}/runs?status=QUEUED&tag=team%3Ddata",
                "run (300 events)": f"{dep}/runs/{run_id}",
                "code location": f"{dep}/locations/quick",
                "launchpad": f"{dep}/launchpad?location=quick&job=etl",
            }
            print(f"machine: {machine()}")
            print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")
            print(
                f"env:     PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}"
            )
            results = measure(cp.url, link, pages, args.repeat, args.chromium)
            print(f"\n{'page':<20} {'first paint p50':>16} {'p90':>8} {'server p50':>11}  target")
            for name, samples in results.items():
                paints = sorted(s[0] for s in samples)
                servers = sorted(s[1] for s in samples)
                p50 = statistics.median(paints)
                p90 = paints[int(len(paints) * 0.9) - 1]
                verdict = "PASS" if p50 < TARGET_MS else "MISS"
                print(
                    f"{name:<20} {p50:>13.0f} ms {p90:>5.0f} ms "
                    f"{statistics.median(servers):>8.0f} ms"
                    f"  < {TARGET_MS:.0f} ms {verdict}"
                )
            print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")
        finally:
            cp.stop()


if __name__ == "__main__":
    main()
