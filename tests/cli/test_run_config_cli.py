"""`tether runs launch` with a run config holding a key its job does not take: refused before a
run exists, the message naming the key and the keys allowed. A real control plane, the CLI as
a subprocess; the location's snapshot is what the SDK makes of these definitions."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import Tenant
from tests.weather import SNAPSHOT


def _launch(
    tenant: Tenant, home: Path, config: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.update(
        TETHER_URL=tenant.cp.url,
        TETHER_TOKEN=tenant.user_token,
        TETHER_DEPLOYMENT=tenant.deployment,
        TETHER_HOME=str(home),
        COLUMNS="200",
        NO_COLOR="1",
    )
    argv = ["runs", "launch", "skies", "weather", "--config-json", json.dumps(config)]
    return subprocess.run(
        [sys.executable, "-m", "tether_cli.main", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_launch_refuses_an_unknown_key_naming_the_keys_allowed(
    tenant: Tenant, tmp_path: Path
) -> None:
    tenant.deploy("skies")
    with tenant.agent() as c:
        status = {
            "status": "RUNNING",
            "snapshot": SNAPSHOT.model_dump(mode="json"),
            "generation": 1,
        }
        r = c.post("/api/v1/agent/code-locations/skies/status", json=status)
        assert r.status_code == 200, r.text

    typo = _launch(tenant, tmp_path, {"city": "Oslo", "fail_lod": True})
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr.rstrip().endswith(
        "invalid run config for job 'weather': "
        "run_config.fail_lod: unknown key; this job's config takes city, fail_load, stations"
    ), typo.stderr
    nested = _launch(tenant, tmp_path, {"city": "Oslo", "stations": [{"id": "a", "hight": 1}]})
    assert nested.returncode == 1
    assert nested.stderr.rstrip().endswith(
        "run_config.stations.0.hight: unknown key; stations.0 takes height_m, id"
    ), nested.stderr
    with tenant.user() as c:
        assert c.get(f"{tenant.dep_path}/runs").json()["runs"] == []  # nothing was created

    fixed = _launch(tenant, tmp_path, {"city": "Oslo", "fail_load": True})
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == tenant.run(fixed.stdout.strip())["id"]
