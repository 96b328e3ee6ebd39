"""``tether backfill``, as subprocesses against a real control plane whose backfill loop
launches the runs, with the test playing the agent that ends them."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_user_cli import Cli, _argv, _env
from tests.controlplane.test_backfills import LOCATION, _snapshot, end_run, partitions
from tests.support import Tenant, wait_until


@pytest.fixture
def cli(tenant: Tenant, tmp_path: Path) -> Cli:
    def run(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _argv(args), env=_env(tenant, tmp_path, **env), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    return run


def _ok(cli: Cli, *args: str) -> str:
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _partition(tenant: Tenant, backfill_id: str, key: str) -> dict[str, Any]:
    return next(p for p in partitions(tenant, backfill_id) if p["key"] == key)


def test_launch_show_cancel_resume_and_list(tenant: Tenant, cli: Cli) -> None:
    tenant.report_running(LOCATION, _snapshot())
    launched = cli(
        "backfill", "launch", LOCATION, "regions", "--partition", "eu", "--partition", "us",
        "--max-in-flight", "1", "--tag", "team=data",
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    backfill_id = launched.stdout.strip()
    assert f"backfill {backfill_id}: 2 partition(s) of lake/regions (2 listed)" in launched.stderr

    # The control plane's loop launches the first; the second waits for a free slot.
    eu = wait_until(lambda: _partition(tenant, backfill_id, "eu")["run_id"], timeout=15)
    shown = _ok(cli, "backfill", "show", backfill_id)
    assert "RUNNING" in shown and "0 succeeded, 0 failed, 1 running, 1 pending" in shown
    assert "team=data" in shown and "at most 1" in shown
    [eu_line] = [line for line in shown.splitlines() if " eu " in line]
    assert "LAUNCHED" in eu_line and eu in eu_line
    [us_line] = [line for line in shown.splitlines() if " us " in line]
    assert "PENDING" in us_line

    end_run(tenant, eu, "SUCCESS")
    us = wait_until(lambda: _partition(tenant, backfill_id, "us")["run_id"], timeout=15)
    canceled = _ok(cli, "backfill", "cancel", backfill_id, "--terminate")
    assert f"backfill {backfill_id} CANCELING" in canceled
    assert tenant.run(us)["status"] == "CANCELING"
    end_run(tenant, us, "CANCELED")  # the agent stopped it
    wait_until(lambda: "CANCELED" in _ok(cli, "backfill", "show", backfill_id), timeout=15)

    resumed = _ok(cli, "backfill", "resume", backfill_id)
    assert f"backfill {backfill_id} RUNNING: 1 succeeded, 0 failed, 0 running, 1 pending" in (
        resumed
    )
    wait_until(lambda: _partition(tenant, backfill_id, "us")["attempt"] == 2, timeout=5)
    [listed] = json.loads(_ok(cli, "backfill", "list", "--json"))
    assert listed["id"] == backfill_id and listed["selection"] == "2 listed"
    table = _ok(cli, "backfill", "list")
    assert backfill_id in table and "lake/regions" in table


def test_mistakes_are_named(tenant: Tenant, cli: Cli) -> None:
    tenant.report_running(LOCATION, _snapshot())
    r = cli("backfill", "launch", LOCATION, "plain", "--all")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == (
        "error: job 'plain' of code location 'lake' is not partitioned: a backfill launches "
        "one run per partition; launch one run of it with `tether runs launch lake plain`"
    )
    r = cli("backfill", "launch", LOCATION, "regions", "--range", "eu")
    assert r.returncode == 2
    assert "--range 'eu' is not FIRST..LAST (e.g. 2026-01-01..2026-01-31)" in r.stderr
    r = cli("backfill", "launch", "--all")
    assert r.returncode == 2
    assert "name what to backfill: LOCATION JOB, or --asset KEY" in r.stderr
    r = cli("backfill", "show", "nope")
    assert r.returncode == 1
    assert "backfill 'nope' not found in deployment 'prod'" in r.stderr
