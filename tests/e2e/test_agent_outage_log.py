"""What a real agent writes to its log while its control plane is down: one line per failed
call, naming the control plane's URL and the error, no traceback; and one line when the
control plane answers again."""

import re
import time
from pathlib import Path

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_location
from tests.support import ControlPlane, wait_until

OUTAGE_SECONDS = 6


def test_an_outage_is_one_line_per_failure_and_one_when_it_is_back(
    own_controlplane: ControlPlane, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    cp = own_controlplane
    tenant = cp.tenant()
    agent = AgentProcess(tenant, temporal_server, tmp_path).start()
    try:
        tenant.deploy("quick", module="tether_sdk.examples.quickstart")
        assert wait_for_location(tenant, "quick")["status"] == "RUNNING"
        before = len(agent.log())
        cp.stop()
        time.sleep(OUTAGE_SECONDS)
        during = agent.log()[before:]
        cp.start()
        wait_until(
            lambda: "is reachable again" in agent.log()[before:],
            timeout=60,
            interval=0.2,
            what="the agent's line saying the control plane is back",
        )
        back = agent.log()[before:]
    finally:
        agent.stop()
        stop_launched(agent.state_dir)

    # No traceback at all: an outage is expected, not a bug.
    assert "Traceback" not in during, during[:4000]
    failures = [line for line in during.splitlines() if "control plane" in line]
    assert failures, during[:4000]
    # One line each, naming the URL and the error.
    for line in failures:
        assert re.search(r" WARNING tether\.agent: ", line), line
        assert cp.url in line, line
    assert all("cannot reach the control plane" in line for line in failures), failures
    # Few: the calls retry with backoff, each failure is one line (today's ~50 tracebacks
    # in 75 s were hundreds of lines).
    assert len(during.splitlines()) <= 6 * OUTAGE_SECONDS, during
    again = [line for line in back.splitlines() if "is reachable again" in line]
    assert len(again) == 1, again
    assert cp.url in again[0] and " INFO " in again[0], again
