"""The example Dagster project, examples/dagster_project (package ``acme_dagster``), run with
plain Dagster: what each job, asset, schedule and sensor does, as Tether's Dagster locations
rely on it (its image is tether-dagster-example, made by scripts/build-images.sh).

Every job runs with ``execute_in_process`` on an ephemeral instance, as Tether's run worker
runs them; ``fails`` fails as designed, and ``slow`` is given 0.1 s (or is terminated)."""

import importlib
import signal
import sys
import threading
import tomllib
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import REPO

PROJECT = REPO / "examples" / "dagster_project"
# The step events each test looks at, in the order Dagster emits them.
OUTCOMES = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY", "STEP_RESTARTED", "STEP_SKIPPED")
# Dagster's console logger off: events still reach the instance.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The project imported from its folder (taken off sys.path and sys.modules afterwards),
    with DAGSTER_HOME in a temporary folder and telemetry off. dagster is imported here, not
    at collection: the rest of the suite never has it in its process because of this file."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
        env.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
        sys.path.insert(0, str(PROJECT))
        try:
            dg = importlib.import_module("dagster")
            module = importlib.import_module("acme_dagster.definitions")
            repo = module.defs.get_repository_def()
            repo.load_all_definitions()  # where definition errors surface
            yield SimpleNamespace(dg=dg, module=module, defs=module.defs, repo=repo)
        finally:
            sys.path.remove(str(PROJECT))
            for name in [m for m in sys.modules if m.split(".")[0] == "acme_dagster"]:
                del sys.modules[name]


@pytest.fixture(autouse=True)
def signal_handlers() -> Iterator[None]:
    """Dagster leaves SIGTERM mapped to SIGINT's handler after a run in the main thread (in
    a pytest-xdist worker: ignored, which every process started later would inherit): put
    both back after each test, as Tether's run worker does after a run."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in kept.items():
        signal.signal(signum, handler)


@pytest.fixture
def instance(project: SimpleNamespace, tmp_path: Path) -> Any:
    """An ephemeral instance whose storage (the asset values) is in tmp_path, as Tether's."""
    return project.dg.DagsterInstance.ephemeral(
        tempdir=str(tmp_path), settings={"telemetry": {"enabled": False}}
    )


def execute(
    project: SimpleNamespace, instance: Any, job: str, run_config: dict | None = None, **kw: Any
) -> Any:
    return project.repo.get_job(job).execute_in_process(
        run_config={**QUIET, **(run_config or {})}, instance=instance, raise_on_error=False, **kw
    )


def outcomes(result: Any) -> dict[str, list[str]]:
    """{step key: its step events among OUTCOMES, in order}."""
    found: dict[str, list[str]] = {}
    for event in result.all_events:
        if event.event_type_value in OUTCOMES:
            found.setdefault(event.step_key, []).append(event.event_type_value)
    return found


def log_lines(instance: Any, result: Any) -> list[str]:
    """The run's log lines (context.log, Dagster's own), not its structured events."""
    entries = instance.all_logs(result.run_id)
    return [entry.user_message for entry in entries if entry.dagster_event is None]


def output_metadata(result: Any, step_key: str) -> dict[str, Any]:
    [output] = [e for e in result.all_events if e.is_successful_output and e.step_key == step_key]
    return {key: value.value for key, value in output.step_output_data.metadata.items()}


# ------------------------------------------------------------------ loading


def test_the_project_loads_from_its_pyproject(project: SimpleNamespace) -> None:
    dg, repo = project.dg, project.repo
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"] == {"module_name": "acme_dagster.definitions"}
    assert pyproject["project"]["name"] == "acme-dagster"
    assert pyproject["project"]["dependencies"] == ["dagster>=1.13,<1.14"]
    # One Definitions at module scope: what Dagster's (and Tether's) discovery picks.
    found = [v for v in vars(project.module).values() if isinstance(v, dg.Definitions)]
    assert found == [project.defs]

    # __ASSET_JOB is Dagster's implicit job of all the assets.
    assert sorted(job.name for job in repo.get_all_jobs()) == [
        "__ASSET_JOB",
        "daily_assets",
        "etl",
        "fails",
        "fanout",
        "flaky",
        "slow",
    ]
    assert sorted(repo.get_top_level_resources()) == ["teardown_marker", "warehouse"]
    assert [s.name for s in repo.schedule_defs] == ["etl_nightly"]
    assert [s.name for s in repo.sensor_defs] == ["etl_batches"]


def test_the_step_keys_of_each_job(project: SimpleNamespace) -> None:
    """The op handles are the step keys (nested graphs dotted). A mapped op (``square``) runs
    as one step per dynamic output: ``square[n1]`` and so on."""
    from dagster._core.definitions.graph_definition import GraphDefinition

    def ops(job: str) -> list[str]:
        graph = project.repo.get_job(job).graph
        handles = graph.iterate_node_handles()
        leaves = [
            h for h in handles if not isinstance(graph.get_node(h).definition, GraphDefinition)
        ]
        return sorted(str(h) for h in leaves)

    assert ops("etl") == ["extract", "load", "transform"]
    fanout = ["split", "square", "sum_squares", "outer.seed", "outer.increment"]
    assert ops("fanout") == sorted([*fanout, "outer.inner.double", "combine"])
    assert ops("flaky") == ["flaky_fetch", "report"]
    assert ops("fails") == ["explode", "never_runs", "prepare"]
    assert ops("slow") == ["nap"]
    assert ops("daily_assets") == ["daily_event_counts", "daily_events"]
    # An asset's step is named after its key (raw/orders -> raw__orders), a check's after
    # its asset and name.
    assert ops("__ASSET_JOB") == [
        "daily_event_counts",
        "daily_events",
        "raw__customers",
        "raw__orders",
        "regional_sales",
        "revenue_by_customer",
        "revenue_by_customer_revenue_is_positive",
    ]


# ------------------------------------------------------------------ op jobs


def test_etl_config_resource_logs_stdout_and_metadata(
    project: SimpleNamespace, instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dg = project.dg
    etl = project.repo.get_job("etl")
    # `source` is required; `rows` and `factor` have defaults.
    with pytest.raises(
        dg.DagsterInvalidConfigError, match='Missing required config entry "source"'
    ):
        dg.validate_run_config(etl, {"ops": {"extract": {"config": {"rows": 5}}}})
    config = dg.validate_run_config(etl, {"ops": {"extract": {"config": {"source": "shop"}}}})
    assert config["ops"]["extract"]["config"] == {"source": "shop", "rows": 3}
    assert config["ops"]["transform"]["config"] == {"factor": 10}
    fields = etl.run_config_schema.config_type.fields["ops"].config_type.fields
    rows = fields["extract"].config_type.fields["config"].config_type.fields["rows"]
    assert (rows.default_value, rows.description) == (3, "How many rows to read.")

    result = execute(project, instance, "etl", {"ops": {"extract": {"config": {"source": "shop"}}}})

    assert result.success
    assert outcomes(result) == {
        "extract": ["STEP_SUCCESS"],
        "transform": ["STEP_SUCCESS"],
        "load": ["STEP_SUCCESS"],
    }
    assert result.output_for_node("transform") == [10, 20, 30]
    assert result.output_for_node("load") == 3
    assert output_metadata(result, "extract") == {"source": "shop", "rows": 3}
    assert output_metadata(result, "load") == {"table": "orders", "written": 3, "total": 60}
    lines = log_lines(instance, result)
    assert "extracting 3 rows from shop" in lines
    assert "loaded 3 rows into orders" in lines
    # The warehouse resource is set up before the first step and torn down after the last.
    assert "warehouse: connecting to memory://acme" in lines
    assert lines[-1] == "warehouse: connection to memory://acme closed"
    # transform prints to stdout: Dagster leaves stdout alone on an ephemeral instance.
    assert "transform: multiplying 3 rows by 10\n" in capsys.readouterr().out


def test_fanout_dynamic_nested_graph_and_fan_in(project: SimpleNamespace, instance: Any) -> None:
    result = execute(project, instance, "fanout")

    assert result.success
    steps = outcomes(result)
    dynamic = ["split", "square[n1]", "square[n2]", "square[n3]", "sum_squares"]
    nested = ["outer.seed", "outer.increment", "outer.inner.double"]
    assert sorted(steps) == sorted([*dynamic, *nested, "combine"])
    assert all(events == ["STEP_SUCCESS"] for events in steps.values())
    assert result.output_for_node("sum_squares") == 1 + 4 + 9
    assert result.output_for_node("outer.inner.double") == (2 + 1) * 2
    assert result.output_for_node("combine") == 14 + 6  # fan-in of sum_squares and outer
    assert "combining [14, 6]" in log_lines(instance, result)


def test_flaky_fails_once_then_succeeds_on_its_retry(
    project: SimpleNamespace, instance: Any
) -> None:
    result = execute(project, instance, "flaky")

    assert result.success
    # A retry stays within the run and the step: no second STEP_START.
    assert outcomes(result) == {
        "flaky_fetch": ["STEP_UP_FOR_RETRY", "STEP_RESTARTED", "STEP_SUCCESS"],
        "report": ["STEP_SUCCESS"],
    }
    starts = [e for e in result.all_events if e.event_type_value == "STEP_START"]
    assert [e.step_key for e in starts] == ["flaky_fetch", "report"]
    [retry] = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retry.event_specific_data.error.cause.cls_name == "ConnectionError"
    lines = log_lines(instance, result)
    assert lines.index("attempt 1") < lines.index("attempt 2") < lines.index("fetched 42")


def test_fails_raises_a_chained_error_and_skips_downstream(
    project: SimpleNamespace, instance: Any
) -> None:
    dg = project.dg
    result = execute(project, instance, "fails")

    assert not result.success
    assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.FAILURE
    # never_runs gets no step event at all, only a log line.
    assert outcomes(result) == {"prepare": ["STEP_SUCCESS"], "explode": ["STEP_FAILURE"]}
    assert "Dependencies for step never_runs failed: ['explode']. Not executing." in log_lines(
        instance, result
    )
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error  # Dagster's wrapper, then the user's chain
    chain = []
    while error is not None:
        chain.append((error.cls_name, error.message.strip()))
        error = error.cause
    assert chain[1:] == [
        ("ValueError", "ValueError: payload has no 'missing' field"),
        ("KeyError", "KeyError: 'missing'"),
    ]
    assert chain[0][0] == "DagsterExecutionStepExecutionError"


def test_slow_sleeps_as_configured_and_marks_its_teardown(
    project: SimpleNamespace, instance: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dg = project.dg
    slow = project.repo.get_job("slow")
    assert dg.validate_run_config(slow, {})["ops"]["nap"]["config"] == {"seconds": 60.0}
    marker = tmp_path / "teardown-marker"
    short = {"ops": {"nap": {"config": {"seconds": 0.1}}}}

    # The marker's path from the resource's config ...
    resources = {"resources": {"teardown_marker": {"config": {"path": str(marker)}}}}
    first = execute(project, instance, "slow", {**short, **resources})
    assert first.success
    assert outcomes(first) == {"nap": ["STEP_SUCCESS"]}
    assert 0.1 <= first.output_for_node("nap") < 1
    assert marker.read_text() == f"{first.run_id}\n"

    # ... or from $ACME_TEARDOWN_MARKER.
    monkeypatch.setenv("ACME_TEARDOWN_MARKER", str(marker))
    second = execute(project, instance, "slow", short)
    assert second.success
    assert marker.read_text() == f"{first.run_id}\n{second.run_id}\n"


def test_slow_terminated_tears_its_resource_down(
    project: SimpleNamespace, instance: Any, tmp_path: Path
) -> None:
    """A terminate the way Dagster's launcher does it (the run marked CANCELING, then SIGINT
    to the main thread): nap is interrupted, the run CANCELED, teardown_marker torn down."""
    dg = project.dg
    marker = tmp_path / "teardown-marker"
    run_id = str(uuid.uuid4())
    napping = threading.Event()

    def on_event(entry: Any) -> None:
        if entry.dagster_event is None and entry.user_message.startswith("napping for"):
            napping.set()

    def terminate() -> None:
        if napping.wait(30):  # nap is running: Dagster's SIGINT handler is installed
            instance.report_run_canceling(instance.get_run_by_id(run_id))
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    instance.add_event_listener(run_id, on_event)
    terminator = threading.Thread(target=terminate, daemon=True)
    terminator.start()
    resources = {"resources": {"teardown_marker": {"config": {"path": str(marker)}}}}
    result = execute(project, instance, "slow", resources, run_id=run_id)
    terminator.join()

    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.CANCELED
    assert outcomes(result) == {"nap": ["STEP_FAILURE"]}
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.error.cls_name == "DagsterExecutionInterruptedError"
    assert marker.read_text() == f"{run_id}\n"


# ------------------------------------------------------------------ assets


def test_asset_specs(project: SimpleNamespace) -> None:
    dg = project.dg
    specs = {spec.key.to_user_string(): spec for spec in project.defs.resolve_all_asset_specs()}
    assert sorted(specs) == [
        "daily_event_counts",
        "daily_events",
        "raw/customers",
        "raw/orders",
        "regional_sales",
        "revenue_by_customer",
    ]
    orders = specs["raw/orders"]
    assert orders.group_name == "ingest"
    assert orders.kinds == {"python", "csv"}
    assert list(orders.owners) == ["team:data-eng", "ada@example.com"]
    assert orders.description == "Orders as the shop exports them, one dict per order."
    assert orders.metadata == {"source": "shop-export", "expected_rows": 4}
    revenue = specs["revenue_by_customer"]
    assert revenue.group_name == "analytics"
    assert sorted(dep.asset_key.to_user_string() for dep in revenue.deps) == [
        "raw/customers",
        "raw/orders",
    ]
    regions = specs["regional_sales"].partitions_def
    assert regions.get_partition_keys() == ["a", "b", "c"]
    daily = project.repo.get_job("daily_assets").partitions_def
    assert (
        daily == specs["daily_events"].partitions_def == specs["daily_event_counts"].partitions_def
    )
    assert isinstance(daily, dg.DailyPartitionsDefinition)
    assert daily.get_first_partition_key() == "2026-01-01"
    [(check_key, check)] = project.repo.asset_checks_defs_by_key.items()
    assert (check_key.asset_key.to_user_string(), check_key.name) == (
        "revenue_by_customer",
        "revenue_is_positive",
    )
    assert check.get_spec_for_check_key(check_key).blocking


def test_unpartitioned_assets_with_their_check(project: SimpleNamespace, instance: Any) -> None:
    dg = project.dg
    keys = [dg.AssetKey(["raw", "orders"]), dg.AssetKey(["raw", "customers"])]
    keys.append(dg.AssetKey("revenue_by_customer"))
    result = execute(project, instance, "__ASSET_JOB", asset_selection=keys)

    assert result.success
    assert outcomes(result) == {
        "raw__orders": ["STEP_SUCCESS"],
        "raw__customers": ["STEP_SUCCESS"],
        "revenue_by_customer": ["STEP_SUCCESS"],
        "revenue_by_customer_revenue_is_positive": ["STEP_SUCCESS"],
    }
    materialized = {
        m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()
    }
    assert sorted(materialized) == ["raw/customers", "raw/orders", "revenue_by_customer"]
    revenue = materialized["revenue_by_customer"].materialization.metadata
    assert (revenue["customers"].value, revenue["total"].value) == (3, 100.0)
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == ("revenue_is_positive", True)
    assert result.asset_value(["revenue_by_customer"]) == {"ada": 37.5, "bob": 12.5, "eve": 50.0}


def test_partitioned_assets(project: SimpleNamespace, instance: Any) -> None:
    dg = project.dg
    region = execute(
        project,
        instance,
        "__ASSET_JOB",
        asset_selection=[dg.AssetKey("regional_sales")],
        partition_key="b",
    )
    assert region.success
    assert outcomes(region) == {"regional_sales": ["STEP_SUCCESS"]}
    [materialization] = region.get_asset_materialization_events()
    assert materialization.materialization.partition == "b"
    assert region.output_for_node("regional_sales") == 20

    day = execute(project, instance, "daily_assets", partition_key="2026-01-02")
    assert day.success
    assert outcomes(day) == {
        "daily_events": ["STEP_SUCCESS"],
        "daily_event_counts": ["STEP_SUCCESS"],
    }
    assert day.output_for_node("daily_events") == ["2026-01-02#0", "2026-01-02#1"]
    assert {m.materialization.partition for m in day.get_asset_materialization_events()} == {
        "2026-01-02"
    }
    with pytest.raises(dg.DagsterUnknownPartitionError):
        execute(project, instance, "daily_assets", partition_key="2025-12-31")


# ------------------------------------------------------------------ automation


def test_etl_nightly_schedule(project: SimpleNamespace, instance: Any) -> None:
    dg = project.dg
    schedule = project.repo.get_schedule_def("etl_nightly")
    assert (schedule.job_name, schedule.cron_schedule) == ("etl", "0 3 * * *")
    assert schedule.execution_timezone == "Europe/Paris"
    at = datetime(2026, 3, 1, 3, 0, tzinfo=ZoneInfo("Europe/Paris"))
    context = dg.build_schedule_context(scheduled_execution_time=at, repository_def=project.repo)
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.run_config == {"ops": {"extract": {"config": {"source": "nightly-export"}}}}
    result = execute(project, instance, "etl", request.run_config)
    assert result.success


def test_etl_batches_sensor(project: SimpleNamespace) -> None:
    """Two batches a tick (run keys batch-N, the cursor the last N), then a skip."""
    dg = project.dg
    sensor = project.repo.get_sensor_def("etl_batches")
    assert (sensor.job_name, sensor.minimum_interval_seconds) == ("etl", 30)
    cursor = None
    ticks = []
    for _ in range(4):
        context = dg.build_sensor_context(cursor=cursor, repository_def=project.repo)
        tick = sensor.evaluate_tick(context)
        ticks.append(([r.run_key for r in tick.run_requests], tick.cursor, tick.skip_message))
        cursor = tick.cursor
    assert ticks == [
        (["batch-1", "batch-2"], "2", None),
        (["batch-3", "batch-4"], "4", None),
        (["batch-5", "batch-6"], "6", None),
        ([], "6", "all 6 batches requested"),
    ]
    context = dg.build_sensor_context(cursor="4", repository_def=project.repo)
    request = sensor.evaluate_tick(context).run_requests[1]
    assert request.run_config == {"ops": {"extract": {"config": {"source": "batch-6", "rows": 6}}}}
    assert request.tags["batch"] == "6"
