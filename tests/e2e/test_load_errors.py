"""A code location whose definitions do not load (here a bad cron) waits in ERROR for new
code: no restarts, one alert, runs refused with its error and the fix; a redeploy of the
fixed code serves again. Real Temporal, control plane, agent and code servers."""

import time
from pathlib import Path

from tests.agent_support import AgentProcess, location, wait_for_location, wait_for_run
from tests.support import Tenant, cli

NIGHTLY = """
from tether_sdk import Definitions, job, schedule, step


@step
def noop() -> int:
    return 1


nightly = job("nightly", steps=[noop])
defs = Definitions(jobs=[nightly], schedules=[schedule("nightly", cron="{cron}", job=nightly)])
"""
FIX = "fix the code and run `tether redeploy nightly`"
# The agent's restart backoff in the tests starts at 1 s: an ERROR that were retried would
# have restarted the server about three times by then.
NO_RESTART_WITHIN = 5


def test_a_location_that_cannot_load_waits_for_new_code_and_refuses_runs(
    e2e_tenant: Tenant, agent: AgentProcess, tmp_path: Path
) -> None:
    tenant = e2e_tenant
    with tenant.user() as c:
        r = c.put(
            f"{tenant.dep_path}/alert-policies/locations",
            json={
                "events": ["location_error"],
                # Nobody listens: the alerts are decided (and listed) all the same.
                "channel": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
            },
        )
        assert r.status_code == 200, r.text
    code = tmp_path / "nightly.py"
    code.write_text(NIGHTLY.format(cron="0 25 * * *"))
    tenant.deploy("nightly", python_file=str(code))
    # Accepted: the location has not loaded yet. It waits for the load, which fails.
    early = tenant.launch("nightly", "nightly")

    loc = wait_for_location(tenant, "nightly")
    assert loc["status"] == "ERROR", loc
    first = loc["error"]["message"].splitlines()[0]
    assert first.startswith("could not load the definitions: "), first
    assert "schedule 'nightly': cron expression '0 25 * * *'" in first
    assert first.endswith(f"; {FIX}"), first

    failed = wait_for_run(tenant, early["id"], timeout=30)
    assert failed["status"] == "FAILURE", failed
    assert failed["status_message"].startswith(
        "code location nightly is ERROR and cannot run anything until it is fixed: "
        f"{first}. The traceback is in `tether locations show nightly`"
    ), failed
    # Where a user looks next: the run's logs say why it never started.
    logs = cli(tenant, "runs", "logs", early["id"])
    assert logs.returncode == 0, logs.stderr
    assert (
        f"run {early['id']} ended FAILURE before any event: {failed['status_message']}"
        in " ".join(logs.stderr.split())
    ), logs.stderr

    time.sleep(NO_RESTART_WITHIN)
    loc = location(tenant, "nightly")
    assert loc["status"] == "ERROR", loc
    starts = [
        c for c in loc["status_history"] if (c["message"] or "").startswith("starting code server")
    ]
    assert len(starts) == 1, loc["status_history"]
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", json={"code_location": "nightly", "job": "nightly"})
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert detail.startswith(
            "code location 'nightly' is in ERROR, so no run of job 'nightly' can start there: "
            f"{first}. Launch it again once the location is RUNNING"
        ), detail
        alerts = c.get(f"{tenant.dep_path}/alerts").json()
    assert [a["event"] for a in alerts] == ["location_error"], alerts

    code.write_text(NIGHTLY.format(cron="0 2 * * *"))
    with tenant.user() as c:
        assert c.post(f"{tenant.dep_path}/code-locations/nightly/redeploy").status_code == 202
    loc = wait_for_location(tenant, "nightly", ("RUNNING",), timeout=60)
    assert loc["error"] is None
    run = tenant.launch("nightly", "nightly")
    assert wait_for_run(tenant, run["id"], timeout=60)["status"] == "SUCCESS"
