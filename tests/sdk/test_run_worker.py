"""The real run worker (a subprocess) against a real control plane on 127.0.0.1."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import running_controlplane
from tests.support import ControlPlane, Tenant, wait_until

QUICKSTART = "tether_sdk.examples.quickstart"


def start_worker(
    tenant: Tenant,
    run_id: str,
    module: str = QUICKSTART,
    python_file: Path | None = None,
    **env: str,
) -> subprocess.Popen[str]:
    target = ["--python-file", str(python_file)] if python_file else ["--module", module]
    return subprocess.Popen(
        [sys.executable, "-m", "tether_cli.main", "run-worker", *target],
        env={
            **os.environ,
            "TETHER_RUN_ID": run_id,
            "TETHER_CONTROL_PLANE_URL": tenant.cp.url,
            "TETHER_RUN_TOKEN": tenant.run_token(run_id),
            "TETHER_HEARTBEAT_INTERVAL": "0.5",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


def events(tenant: Tenant, run_id: str) -> list[dict[str, Any]]:
    """Every stored event of the run, in order (paging through all of them)."""
    found: list[dict[str, Any]] = []
    with tenant.user() as c:
        while True:
            page = c.get(
                f"{tenant.dep_path}/runs/{run_id}/events",
                params={"after": found[-1]["seq"] if found else 0, "limit": 1000},
            ).json()
            found += page["events"]
            if len(page["events"]) < 1000:
                return found


def wait_for_step_start(tenant: Tenant, run_id: str, step: str) -> None:
    wait_until(
        lambda: any(
            e["type"] == "STEP_START" and e["step"] == step for e in events(tenant, run_id)
        ),
        timeout=30,
        what=f"step {step} to start",
    )


def start_slow_run(tenant: Tenant) -> tuple[str, subprocess.Popen[str]]:
    """A quickstart run whose worker is inside its 60 s ``transform`` step."""
    tenant.deploy()
    run = tenant.launch(run_config={"source": "s3://x", "sleep_seconds": 60})["id"]
    proc = start_worker(tenant, run)
    try:
        wait_for_step_start(tenant, run, "transform")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return run, proc


def contiguous(evs: list[dict[str, Any]]) -> bool:
    return [e["seq"] for e in evs] == list(range(1, len(evs) + 1))


def test_successful_run_streams_ordered_events(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch(run_config={"source": "s3://bucket/orders.csv", "rows": 5})["id"]
    code, out = finish(start_worker(tenant, run))
    assert code == 0, out
    assert tenant.run(run)["status"] == "SUCCESS"
    evs = events(tenant, run)
    assert contiguous(evs)
    assert evs[0]["type"] == "RUN_START" and evs[-1]["type"] == "RUN_SUCCESS"
    started = [e["step"] for e in evs if e["type"] == "STEP_START"]
    assert started == ["extract", "transform", "load", "report"]
    logs = [(e["step"], e["message"]) for e in evs if e["type"] == "LOG"]
    assert ("extract", "extracting 5 rows from s3://bucket/orders.csv") in logs
    stdout = [e for e in evs if e["type"] == "LOG" and e["data"].get("stream") == "stdout"]
    assert any(e["message"] == "extract: read 5 rows" and e["step"] == "extract" for e in stdout)
    load_done = next(e for e in evs if e["type"] == "STEP_SUCCESS" and e["step"] == "load")
    assert load_done["data"]["metadata"] == {"rows": 5, "total": 20}


def test_failing_step_fails_the_run_and_skips_downstream(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch(run_config={"source": "db://x", "fail": True})["id"]
    code, out = finish(start_worker(tenant, run))
    assert code == 1, out
    evs = events(tenant, run)
    failure = next(e for e in evs if e["type"] == "STEP_FAILURE")
    assert failure["step"] == "load"
    assert "load failed as requested (fail=true) for db://x" in failure["message"]
    assert "Traceback" in str(failure["data"])
    assert [e["step"] for e in evs if e["type"] == "STEP_SKIPPED"] == ["report"]
    final = tenant.run(run)
    assert final["status"] == "FAILURE" and "load" in final["status_message"]


def test_invalid_config_fails_naming_the_field(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch(run_config={"rows": "many"})["id"]
    code, out = finish(start_worker(tenant, run))
    assert code == 1, out
    final = tenant.run(run)
    assert final["status"] == "FAILURE"
    assert "source" in final["status_message"] and "rows" in final["status_message"]
    assert not [e for e in events(tenant, run) if e["type"] == "STEP_START"]


def test_import_error_fails_the_run_with_the_traceback(tenant: Tenant) -> None:
    tenant.deploy("broken", module="tether_sdk.examples.broken")
    run = tenant.launch("broken", job="anything")["id"]
    code, out = finish(start_worker(tenant, run, module="tether_sdk.examples.broken"))
    assert code == 1, out
    final = tenant.run(run)
    assert final["status"] == "FAILURE"
    failure = next(e for e in events(tenant, run) if e["type"] == "RUN_FAILURE")
    assert "Traceback" in str(failure["data"]) + failure["message"]


def test_sigterm_cancels_after_interrupting_the_step(tenant: Tenant) -> None:
    run, proc = start_slow_run(tenant)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc, timeout=30)
    assert code == 143, out
    assert time.monotonic() - started < 20  # the 60 s sleep was interrupted
    evs = events(tenant, run)
    assert [
        (e["type"], e["step"])
        for e in evs
        if e["type"].startswith("STEP_") and e["step"] != "extract"
    ] == [
        ("STEP_START", "transform"),
        ("STEP_CANCELED", "transform"),
        ("STEP_SKIPPED", "load"),
        ("STEP_SKIPPED", "report"),
    ]
    assert evs[-1]["type"] == "RUN_CANCELED"
    assert tenant.run(run)["status"] == "CANCELED"


@pytest.fixture
def own_cp(tmp_path: Path) -> Iterator[ControlPlane]:
    with running_controlplane(
        "sqlite", tmp_path, run_start_timeout_seconds=3600, run_heartbeat_timeout_seconds=3600
    ) as cp:
        yield cp


def test_control_plane_lost_mid_run_loses_nothing(own_cp: ControlPlane) -> None:
    """The control plane goes away while the run is mid-step and stays away until the run
    has finished; once it is back, every event arrives exactly once."""
    tenant = own_cp.tenant()
    tenant.deploy()
    run = tenant.launch(run_config={"source": "s3://x", "rows": 50, "sleep_seconds": 1})["id"]
    proc = start_worker(tenant, run)
    try:
        wait_for_step_start(tenant, run, "transform")
        own_cp.stop()
        time.sleep(6)  # the run finishes meanwhile: its last events wait in the worker
        assert proc.poll() is None, "the worker must keep its events until they are delivered"
        own_cp.start()
        code, out = finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, out
    evs = events(tenant, run)
    assert contiguous(evs)
    assert evs[-1]["type"] == "RUN_SUCCESS"
    # Nothing stored twice: every log line of the run appears once.
    counts = Counter((e["step"], e["message"]) for e in evs if e["type"] == "LOG")
    assert counts and max(counts.values()) == 1
    assert [e["step"] for e in evs if e["type"] == "STEP_SUCCESS"] == [
        "extract",
        "transform",
        "load",
        "report",
    ]
    assert tenant.run(run)["status"] == "SUCCESS"


def test_two_sigterms_at_once_are_one_cancel(tenant: Tenant) -> None:
    """The agent's SIGTERM and the worker's own (from a heartbeat) can coincide: still a
    clean cancel with every event delivered, not a forced exit."""
    run, proc = start_slow_run(tenant)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc, timeout=30)
    assert code == 143, out
    assert events(tenant, run)[-1]["type"] == "RUN_CANCELED"


def test_a_later_signal_ends_a_flush_that_cannot_finish(own_cp: ControlPlane) -> None:
    _, proc = start_slow_run(own_cp.tenant())
    own_cp.stop()  # the final events cannot be delivered: the worker waits to flush
    proc.send_signal(signal.SIGTERM)
    time.sleep(6)
    alive_after_first = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc, timeout=10)
    assert alive_after_first, "the first signal must not drop buffered events"
    assert code == 143, out
    assert "exiting now" in out
