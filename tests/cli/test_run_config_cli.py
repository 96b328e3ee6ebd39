"""`tether runs launch` with a run config holding a key its job does not take: refused before a
run exists, the message naming the key and the keys allowed. A real control plane, the CLI as
a subprocess; the location's snapshot is what the SDK makes of these definitions."""

import json
import subprocess

from tests.support import Tenant, cli
from tests.weather import SNAPSHOT


def _launch(tenant: Tenant, config: dict[str, object]) -> subprocess.CompletedProcess[str]:
    return cli(tenant, "runs", "launch", "skies", "weather", "--config-json", json.dumps(config))


def test_launch_refuses_an_unknown_key_naming_the_keys_allowed(
    tenant: Tenant,
) -> None:
    tenant.report_running("skies", SNAPSHOT.model_dump(mode="json"))

    typo = _launch(tenant, {"city": "Oslo", "fail_lod": True})
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr.rstrip().endswith(
        "invalid run config for job 'weather': "
        "run_config.fail_lod: unknown key; this job's config takes city, fail_load, stations"
    ), typo.stderr
    nested = _launch(tenant, {"city": "Oslo", "stations": [{"id": "a", "hight": 1}]})
    assert nested.returncode == 1
    assert nested.stderr.rstrip().endswith(
        "run_config.stations.0.hight: unknown key; stations.0 takes height_m, id"
    ), nested.stderr
    with tenant.user() as c:
        assert c.get(f"{tenant.dep_path}/runs").json()["runs"] == []  # nothing was created

    fixed = _launch(tenant, {"city": "Oslo", "fail_load": True})
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == tenant.run(fixed.stdout.strip())["id"]
