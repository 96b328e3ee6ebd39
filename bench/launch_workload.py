"""The launch benchmark's workload, shared by the process and the Docker launcher's parts: a
code location with one trivial job, deployed and warmed up the same way for both."""

from __future__ import annotations

from tests.agent_support import wait_for_location, wait_for_run
from tests.support import Tenant

LOCATION = "trivial"  # launch: warm (the default)
COLD_LOCATION = "trivial-cold"  # the same file, launch: cold
POOL_LOCATION = "trivial-pool"  # Docker: the same, with a warm pool
JOB = "one_step"

TRIVIAL_LOCATION = '''\
"""A code location with one trivial job: the launch benchmark's workload."""

from tether_sdk import Definitions, job, step


@step
def noop() -> int:
    return 1


defs = Definitions(jobs=[job("one_step", steps=[noop])])
'''


def ready_after_warm_up(tenant: Tenant, what: str, location: str = LOCATION) -> None:
    """Wait for the location to run, then one run to succeed (imports and caches warm)."""
    loc = wait_for_location(tenant, location, timeout=120)
    if loc["status"] != "RUNNING":
        raise RuntimeError(f"{what} code location is {loc['status']}: {loc.get('error')}")
    warm = tenant.launch(location, JOB)
    done = wait_for_run(tenant, warm["id"], timeout=120)
    if done["status"] != "SUCCESS":
        raise RuntimeError(f"{what} warm-up run ended {done['status']}: {done['status_message']}")
