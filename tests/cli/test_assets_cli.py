"""``tether assets``, as subprocesses against a real control plane, with the test playing
the agent and the run worker (which post what a real one would)."""

import json

from tests.controlplane.test_assets import (
    _dagster_snapshot,
    _materialization,
    _post_events,
    _quick_snapshot,
)
from tests.support import Tenant, cli, event


def _rows(stdout: str) -> list[list[str]]:
    """The body rows of a table as the CLI prints it, each a list of its cells."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def test_materialize_list_show_history_and_partitions(tenant: Tenant) -> None:
    tenant.report_running("quick", _quick_snapshot())
    tenant.report_running("dg", _dagster_snapshot())

    launched = cli(tenant, "assets", "materialize", "raw/orders", "--partition", "eu")
    assert launched.returncode == 0, launched.stderr
    run_id = launched.stdout.strip()
    assert f"run {run_id}: dg/orders_job" in launched.stderr
    assert f"{tenant.cp.url}/d/{tenant.deployment}/runs/{run_id}" in launched.stderr
    assert tenant.run(run_id)["tags"]["dagster/partition"] == "eu"
    _post_events(
        tenant,
        run_id,
        [event(1, "RUN_START"), _materialization(2, "raw/orders", "eu", rows=42)],
    )

    listed = cli(tenant, "assets", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {row[0]: row for row in _rows(listed.stdout)}
    assert rows["raw/orders"][3:4] + rows["raw/orders"][5:] == ["MATERIALIZED", "eu", run_id]
    assert rows["stats"][3] == "NEVER"
    grouped = cli(tenant, "assets", "list", "--group", "sales", "--json")
    assert [a["key"] for a in json.loads(grouped.stdout)] == ["order_totals", "top_region"]

    shown = cli(tenant, "assets", "show", "raw/orders")
    assert shown.returncode == 0, shown.stderr
    assert "1 materialized, 0 failed, 2 missing" in shown.stdout
    assert "stats" in shown.stdout  # downstream
    assert "rows: 42" in shown.stdout

    history = cli(tenant, "assets", "history", "raw/orders")
    assert history.returncode == 0, history.stderr
    assert "materialization" in history.stdout and "rows=42" in history.stdout

    missing = cli(tenant, "assets", "partitions", "raw/orders", "--status", "missing")
    assert missing.returncode == 0, missing.stderr
    assert [row[:2] for row in _rows(missing.stdout)] == [["us", "MISSING"], ["apac", "MISSING"]]
    assert "3 partitions: 1 materialized, 0 failed, 2 missing" in missing.stderr


def test_mistakes_say_what_to_do(tenant: Tenant) -> None:
    tenant.report_running("quick", _quick_snapshot())
    both = cli(tenant, "assets", "materialize", "raw_orders", "--partition", "a", "--range", "a..b")
    assert both.returncode == 2 and "not both" in both.stderr
    bad_range = cli(tenant, "assets", "materialize", "raw_orders", "--range", "2026-01-01")
    assert bad_range.returncode == 2 and "FIRST..LAST" in bad_range.stderr
    unknown = cli(tenant, "assets", "materialize", "nope")
    assert unknown.returncode == 1 and "`tether assets list`" in unknown.stderr
    absent = cli(tenant, "assets", "show", "nope")
    assert absent.returncode == 1 and "not found" in absent.stderr
