"""Terminate, timed as a user would time it, on a real control plane, Temporal and agent with
the process launcher: the first SIGTERM reaches the run's step within a second or so of the
call, and a step that ignores it is killed the stop grace (TETHER_RUN_STOP_GRACE_SECONDS, 3 s
here) after that FIRST signal. tests/docker/test_terminate_docker.py checks the same of run
containers. The bounds are generous (a loaded machine) but each one fails on the old path:
the first signal came from the worker's own heartbeat up to 5 s late, the agent's SIGTERM
after the watch's cancel (up to 8 s), and the grace counted from that second signal."""

import re
import time
from pathlib import Path
from typing import Any

from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    events,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.support import Tenant, wait_until

GRACE = 3.0
# From the terminate call to the first SIGTERM in the step.
FIRST_SIGNAL_WITHIN = 1.5
# The kill comes GRACE after the first signal: not sooner (less the clocks' and polls'
# jitter), and not much later.
KILL_EARLY_SLACK = 0.3
KILL_LATE_SLACK = 1.5
# A step that stops on SIGTERM: from the call to the run's CANCELED.
CANCELED_WITHIN = 2.5

# A location of two jobs: `stubborn` ignores SIGTERM, logging the wall-clock time of each
# one it receives; `polite` sleeps, and stops as a step does on SIGTERM.
LOCATION = """
import signal
import time

from tether_sdk import Definitions, StepContext, job, step


@step
def stubborn(ctx: StepContext) -> None:
    received: list[float] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(time.time()))
    ctx.log.info("ignoring SIGTERM")
    reported = 0
    while True:
        while reported < len(received):
            ctx.log.info(f"SIGTERM received at {received[reported]:.3f}")
            reported += 1
        time.sleep(0.02)


@step
def polite(ctx: StepContext) -> None:
    ctx.log.info("sleeping")
    time.sleep(600)


defs = Definitions(jobs=[job("stubborn", steps=[stubborn]), job("polite", steps=[polite])])
"""
SIGNALED = re.compile(r"SIGTERM received at ([0-9.]+)")


def signal_times(tenant: Tenant, run_id: str) -> list[float]:
    """When the step received each SIGTERM (wall clock), from its own log lines."""
    return [
        float(m.group(1))
        for e in events(tenant, run_id)
        if (m := SIGNALED.match(e["message"] or ""))
    ]


def logged(tenant: Tenant, run_id: str, message: str) -> None:
    wait_until(
        lambda: any(e["message"] == message for e in events(tenant, run_id)),
        timeout=60,
        what=f"{message!r} in run {run_id}",
    )


def terminate(tenant: Tenant, run_id: str) -> float:
    """POST terminate; returns the wall-clock time just before the call."""
    called = time.time()
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs/{run_id}/terminate")
        assert r.status_code == 202, r.text
    return called


def gone_at(alive: Any, timeout: float = 30) -> float:
    """The wall-clock time ``alive()`` first turned false (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while alive():
        assert time.monotonic() < deadline, f"still alive after {timeout} s"
        time.sleep(0.02)
    return time.time()


def check_stubborn_timeline(
    tenant: Tenant, run_id: str, called: float, gone: float, killed_exit_code: int
) -> None:
    """What the user checks of a terminated step that ignores SIGTERM."""
    done = wait_for_run(tenant, run_id, timeout=30)
    assert done["status"] == "CANCELED", done
    assert done["status_message"].startswith("terminated by a user"), done
    assert done["exit_code"] == killed_exit_code, done
    received = signal_times(tenant, run_id)
    assert received, "the step never saw a SIGTERM"
    first = received[0] - called
    assert first < FIRST_SIGNAL_WITHIN, f"first SIGTERM {first:.2f} s after the call"
    killed = gone - received[0]
    assert GRACE - KILL_EARLY_SLACK <= killed < GRACE + KILL_LATE_SLACK, (
        f"killed {killed:.2f} s after the first SIGTERM (grace {GRACE:g} s); "
        f"SIGTERMs at {[round(t - called, 2) for t in received]} s after the call"
    )


def test_a_step_ignoring_sigterm_is_killed_the_grace_after_the_first_signal(
    e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    (tmp_path / "terminating.py").write_text(LOCATION)
    agent = AgentProcess(
        e2e_tenant, temporal_server, tmp_path, TETHER_RUN_STOP_GRACE_SECONDS=str(GRACE)
    ).start()
    try:
        e2e_tenant.deploy("terminating", python_file=str(tmp_path / "terminating.py"))
        assert wait_for_location(e2e_tenant, "terminating")["status"] == "RUNNING"
        run = e2e_tenant.launch("terminating", "stubborn")
        logged(e2e_tenant, run["id"], "ignoring SIGTERM")
        launcher = ProcessLauncher(agent.state_dir)
        label = f"run:{run['id']}"
        assert launcher.find(label) is not None

        called = terminate(e2e_tenant, run["id"])
        gone = gone_at(lambda: launcher.find(label) is not None)
        check_stubborn_timeline(e2e_tenant, run["id"], called, gone, -9)

        # A step that stops on SIGTERM: CANCELED about as soon as the signal arrives.
        polite = e2e_tenant.launch("terminating", "polite")
        logged(e2e_tenant, polite["id"], "sleeping")
        called = terminate(e2e_tenant, polite["id"])
        done = wait_for_run(e2e_tenant, polite["id"], timeout=30)
        took = time.time() - called
        assert done["status"] == "CANCELED", done
        assert took < CANCELED_WITHIN, f"CANCELED {took:.2f} s after the call"
        assert [e["type"] for e in events(e2e_tenant, polite["id"])][-1] == "RUN_CANCELED"
    finally:
        agent.stop()
        stop_launched(agent.state_dir)
