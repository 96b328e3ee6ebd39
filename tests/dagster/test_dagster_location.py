"""A Dagster project as a Tether code location (tether_sdk/dagster), in this process with
the real dagster: found the ways Dagster users name it, described as Tether's snapshot,
validated by Dagster's config system, and run with Dagster's in-process executor, its
events translated as they come. Each job's steps and outcomes, and its materializations,
equal what Dagster's own ``execute_in_process`` reports for the same job and config.

The example project is examples/dagster_project (tests/dagster/test_example_project.py says
what each of its jobs does)."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tether_api.codeserver import LoadError, ValidateRequest
from tether_api.enums import CodeLocationKind, EventType, StepStatus
from tether_api.run_worker_api import RunEvent
from tether_api.steps import summarize_steps
from tether_api.user_api import Run
from tether_sdk.location import LocationTarget, RunContext, load_location
from tether_sdk.run_worker.events import MemoryEvents
from tether_sdk.run_worker.executor import CancelState, Outcome

PROJECT = REPO / "examples" / "dagster_project"
ETL_CONFIG = {"ops": {"extract": {"config": {"source": "s3://orders", "rows": 4}}}}
# Dagster's own run, for comparison: its console logger off (as Tether runs it).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture(scope="module", autouse=True)
def dagster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """DAGSTER_HOME and Tether's Dagster storage in temporary folders; the project's module
    and the working directory put back afterwards."""
    cwd, path = os.getcwd(), list(sys.path)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster-home")))
        env.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
        env.setenv("TETHER_DAGSTER_STORAGE", str(tmp_path_factory.mktemp("dagster-storage")))
        try:
            yield
        finally:
            os.chdir(cwd)
            sys.path[:] = path
            for name in [m for m in sys.modules if m.split(".")[0] in ("acme_dagster", "proj")]:
                del sys.modules[name]


def dagster_target(**given: Any) -> LocationTarget:
    return LocationTarget(kind=CodeLocationKind.DAGSTER, **given)


@pytest.fixture(scope="module")
def location(dagster_env: None) -> Any:
    """The example project, named by its folder alone (its pyproject.toml names the module)."""
    loaded = load_location(dagster_target(working_directory=str(PROJECT)))
    assert not isinstance(loaded, LoadError), loaded.traceback
    return loaded


def run_of(job: str, run_config: dict[str, Any] | None = None, **tags: str) -> Run:
    return Run(
        id=str(uuid.uuid4()),
        deployment="prod",
        code_location="acme",
        job=job,
        run_config=run_config or {},
        tags=tags,
        status="STARTING",
        created_at=datetime.now(UTC),
    )


def execute(location: Any, run: Run) -> tuple[Outcome, list[RunEvent]]:
    events = MemoryEvents()
    outcome = location.execute(RunContext(run=run, emitter=events, cancel=CancelState()))
    return outcome, events.run_events()


def tether_steps(events: list[RunEvent]) -> dict[str, str]:
    """Each step's outcome as Tether's run shows it."""
    return {s.name: s.status.value for s in summarize_steps(events)}


def dagster_steps(
    location: Any, job: str, run_config: dict[str, Any], selection: list[str] | None = None
) -> dict[str, str]:
    """Each step's outcome in Dagster's own execute_in_process of the same job and config."""
    result = dagster_result(location, job, run_config, selection)
    outcomes: dict[str, str] = {}
    for event in result.all_events:
        if event.step_key is None:
            continue
        if event.is_step_success:
            outcomes[event.step_key] = "SUCCESS"
        elif event.is_step_failure:
            outcomes[event.step_key] = "FAILURE"
        elif event.is_step_skipped:
            outcomes[event.step_key] = "SKIPPED"
    return outcomes


def materializations(events: list[RunEvent]) -> list[str]:
    return sorted(e.data["asset_key"] for e in events if e.type == EventType.ASSET_MATERIALIZATION)


def dagster_materializations(
    location: Any, job: str, run_config: dict[str, Any], selection: list[str] | None = None
) -> list[str]:
    result = dagster_result(location, job, run_config, selection)
    return sorted(
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    )


def dagster_result(
    location: Any, job: str, run_config: dict[str, Any], selection: list[str] | None = None
) -> Any:
    """Dagster's own execute_in_process of the same job, config and asset selection."""
    import dagster as dg

    return location.repo.get_job(location.names.dagster(job)).execute_in_process(
        run_config={**run_config, **QUIET},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        asset_selection=[dg.AssetKey.from_user_string(k) for k in selection] if selection else None,
    )


# --- loading -------------------------------------------------------------------------------


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


TWO_DEFS = """
import dagster as dg

@dg.op
def hello() -> int:
    return 1

@dg.job
def greet():
    hello()

defs = dg.Definitions(jobs=[greet])
other = dg.Definitions(jobs=[greet])
"""


def test_a_module_a_file_and_an_attribute_load_as_dagster_does(tmp_path: Path) -> None:
    project = write(tmp_path, {"two_defs.py": TWO_DEFS})
    refused = load_location(dagster_target(python_file=str(project / "two_defs.py")))
    assert isinstance(refused, LoadError)
    # Dagster's own rule (two Definitions are an error), with the way out.
    assert "more than one Definitions" in refused.message
    chosen = load_location(
        dagster_target(python_file=str(project / "two_defs.py"), attribute="other")
    )
    assert not isinstance(chosen, LoadError), chosen.traceback
    assert [j.name for j in chosen.snapshot().jobs] == ["greet"]
    missing = load_location(
        dagster_target(python_file=str(project / "two_defs.py"), attribute="nope")
    )
    assert isinstance(missing, LoadError) and "has no attribute 'nope'" in missing.message


def test_what_fails_to_load_is_named_with_the_users_traceback(tmp_path: Path) -> None:
    project = write(
        tmp_path,
        {
            "broken_import.py": "import dagster as dg\nimport not_a_module_anywhere\n",
            "bad_defs.py": (
                "import dagster as dg\n\n"
                "@dg.asset(name='twice')\ndef one(): return 1\n\n"
                "@dg.asset(name='twice')\ndef two(): return 2\n\n"
                "defs = dg.Definitions(assets=[one, two])\n"
            ),
            "nothing.py": "X = 1\n",
        },
    )
    broken = load_location(dagster_target(python_file=str(project / "broken_import.py")))
    assert isinstance(broken, LoadError)
    assert broken.message == "ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    assert "broken_import.py" in broken.traceback and "importlib" not in broken.traceback
    # A definition error surfaces when the repository is built, not at import: still a
    # load error of the location, not a crash.
    bad = load_location(dagster_target(python_file=str(project / "bad_defs.py")))
    assert isinstance(bad, LoadError) and "Dagster" in bad.message
    nothing = load_location(dagster_target(python_file=str(project / "nothing.py")))
    assert isinstance(nothing, LoadError) and "No Definitions" in nothing.message


def test_a_project_folder_without_a_module_says_what_to_add(tmp_path: Path) -> None:
    empty = load_location(dagster_target(working_directory=str(tmp_path)))
    assert isinstance(empty, LoadError) and "pyproject.toml does not exist" in empty.message
    write(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n"})
    silent = load_location(dagster_target(working_directory=str(tmp_path)))
    assert isinstance(silent, LoadError)
    assert "[tool.dagster]" in silent.message and "module_name" in silent.message


def test_the_control_plane_and_the_agent_never_import_dagster() -> None:
    """Only a Dagster location's own processes import dagster: the control plane's app, the
    agent's worker and every launcher load without it."""
    probe = (
        "import sys\n"
        "import tether_controlplane.api.app, tether_cli.app, worker.main\n"
        "import activities.launchers.process, activities.launchers.docker\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert found.stdout.strip() == "[]", found.stdout


def test_a_tether_locations_attribute_names_its_definitions() -> None:
    found = load_location(LocationTarget(module="tether_sdk.examples.quickstart", attribute="defs"))
    assert not isinstance(found, LoadError) and found.kind == CodeLocationKind.TETHER
    wrong = load_location(LocationTarget(module="tether_sdk.examples.quickstart", attribute="etl"))
    assert isinstance(wrong, LoadError) and "no Definitions named 'etl'" in wrong.message


# --- the snapshot --------------------------------------------------------------------------


def test_the_snapshot_shows_jobs_as_graphs_and_the_assets(location: Any) -> None:
    snapshot = location.snapshot()
    assert snapshot.kind == CodeLocationKind.DAGSTER
    jobs = {j.name: j for j in snapshot.jobs}
    # Dagster's implicit asset job, under a name Tether's rules allow.
    assert set(jobs) == {"assets", "daily_assets", "etl", "fails", "fanout", "flaky", "slow"}
    fanout = {s.name: s for s in jobs["fanout"].steps}
    assert set(fanout) == {
        "split",
        "square",
        "sum_squares",
        "outer.seed",
        "outer.increment",
        "outer.inner.double",
        "combine",
    }
    assert fanout["square"].mapped and not fanout["sum_squares"].mapped
    assert fanout["sum_squares"].deps == ["square"]
    assert fanout["combine"].deps == ["outer.inner.double", "sum_squares"]  # fan-in
    etl = jobs["etl"]
    assert [s.name for s in etl.steps] == ["extract", "transform", "load"]
    source = etl.config_schema["properties"]["ops"]["properties"]["extract"]
    fields = source["properties"]["config"]["properties"]
    assert fields["rows"]["default"] == 3 and "source" in fields
    assert "execution" not in etl.config_schema["properties"]
    assets = {a.key: a for a in snapshot.assets}
    assert "raw/orders" in assets and "raw/orders" in assets["revenue_by_customer"].deps
    [check] = assets["revenue_by_customer"].checks
    assert check.blocking
    assert assets["regional_sales"].partitions is not None
    assert assets["regional_sales"].partitions.kind == "static"
    assert assets["daily_events"].partitions.kind == "time_window"
    assert {s.name for s in snapshot.schedules} == {"etl_nightly"}
    assert {s.name for s in snapshot.sensors} == {"etl_batches"}
    assert {r.name for r in snapshot.resources} >= {"warehouse"}


# --- validation ----------------------------------------------------------------------------


def test_validation_is_dagsters_and_names_each_bad_field(location: Any) -> None:
    good = location.validate(ValidateRequest(job="etl", run_config=ETL_CONFIG))
    assert good.valid and good.steps == ["extract", "transform", "load"]
    bad = location.validate(
        ValidateRequest(
            job="etl",
            run_config={"ops": {"extract": {"config": {"source": "s3://x", "rows": "many"}}}},
        )
    )
    assert not bad.valid
    assert [e.field for e in bad.errors] == ["ops.extract.config.rows"]
    unknown = location.validate(ValidateRequest(job="nope"))
    assert not unknown.valid and "known jobs: assets, daily_assets, etl" in (unknown.message or "")


def test_an_unknown_partition_or_asset_is_refused_before_the_run(location: Any) -> None:
    partition = location.validate(
        ValidateRequest(job="daily_assets", tags={"dagster/partition": "1999-01-01"})
    )
    assert not partition.valid
    assert "partition '1999-01-01' does not exist" in (partition.message or "")
    fine = location.validate(
        ValidateRequest(job="daily_assets", tags={"dagster/partition": "2026-01-02"})
    )
    assert fine.valid, fine.message
    selection = location.validate(
        ValidateRequest(job="assets", tags={"tether/asset_selection": '["raw/nope"]'})
    )
    assert not selection.valid and "asset 'raw/nope' is not in job" in (selection.message or "")


# --- running -------------------------------------------------------------------------------


ASSETS = ["raw/orders", "raw/customers", "revenue_by_customer"]


@pytest.mark.parametrize(
    ("job", "run_config", "selection"),
    [
        ("etl", ETL_CONFIG, None),
        ("fanout", {}, None),
        ("flaky", {}, None),
        ("fails", {}, None),
        ("assets", {}, ASSETS),
    ],
)
def test_each_jobs_steps_and_materializations_are_as_in_dagsters_own_run(
    location: Any, job: str, run_config: dict[str, Any], selection: list[str] | None
) -> None:
    tags = {"tether/asset_selection": json.dumps(selection)} if selection else {}
    outcome, events = execute(location, run_of(job, run_config, **tags))
    theirs = dagster_steps(location, job, run_config, selection)
    ours = tether_steps(events)
    # Every step Dagster ran ends the same; the ones it never ran are SKIPPED here.
    assert {k: v for k, v in ours.items() if k in theirs} == theirs
    assert {k for k, v in ours.items() if k not in theirs} == {
        k for k, v in ours.items() if v == "SKIPPED" and k not in theirs
    }
    expected = Outcome.FAILURE if "FAILURE" in theirs.values() else Outcome.SUCCESS
    assert materializations(events) == dagster_materializations(
        location, job, run_config, selection
    )
    assert outcome == expected
    assert events[0].type == EventType.RUN_START
    assert events[-1].type == (
        EventType.RUN_SUCCESS if expected == Outcome.SUCCESS else EventType.RUN_FAILURE
    )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_a_failed_op_names_the_users_error_and_its_cause(location: Any) -> None:
    outcome, events = execute(location, run_of("fails"))
    assert outcome == Outcome.FAILURE
    [failure] = [e for e in events if e.type == EventType.STEP_FAILURE]
    assert failure.step == "explode"
    assert failure.data["error_class"] == "ValueError"
    assert failure.data["error"].startswith("ValueError: ")
    assert failure.data["causes"] and failure.data["causes"][0].startswith("KeyError")
    [skipped] = [e for e in events if e.type == EventType.STEP_SKIPPED]
    assert (skipped.step, skipped.data["reason"]) == ("never_runs", "upstream failed")
    final = events[-1]
    assert final.type == EventType.RUN_FAILURE and "explode" in final.message


def test_a_retried_op_is_one_step_retried(location: Any) -> None:
    outcome, events = execute(location, run_of("flaky"))
    assert outcome == Outcome.SUCCESS
    kinds = [e.type for e in events if e.step == "flaky_fetch" and e.type != EventType.LOG]
    assert kinds == [
        EventType.STEP_START,
        EventType.STEP_UP_FOR_RETRY,
        EventType.STEP_RESTARTED,
        EventType.STEP_SUCCESS,
    ]
    [step] = [s for s in summarize_steps(events) if s.name == "flaky_fetch"]
    assert (step.status, step.retries) == (StepStatus.SUCCESS, 1)


def test_mapped_steps_are_each_in_the_run(location: Any) -> None:
    _, events = execute(location, run_of("fanout"))
    planned = [s.name for s in location.snapshot().job("fanout").steps]
    steps = {s.name: s.status for s in summarize_steps(events, planned)}
    assert {"square[n1]", "square[n2]", "square[n3]"} <= set(steps)
    assert "square" not in steps  # the planned name stands for its mapped steps
    assert set(steps.values()) == {StepStatus.SUCCESS}


def test_logs_materializations_and_checks_arrive_as_events(location: Any) -> None:
    _, events = execute(location, run_of("etl", ETL_CONFIG))
    logs = [(e.step, e.level, e.message) for e in events if e.type == EventType.LOG]
    assert ("extract", "INFO", "extracting 4 rows from s3://orders") in logs
    run = run_of(
        "assets",
        **{"tether/asset_selection": '["raw/orders", "raw/customers", "revenue_by_customer"]'},
    )
    outcome, asset_events = execute(location, run)
    assert outcome == Outcome.SUCCESS
    materialized = [
        e.data["asset_key"] for e in asset_events if e.type == EventType.ASSET_MATERIALIZATION
    ]
    assert sorted(materialized) == ["raw/customers", "raw/orders", "revenue_by_customer"]
    [check] = [e for e in asset_events if e.type == EventType.ASSET_CHECK_EVALUATION]
    assert check.data["check"] == "revenue_is_positive" and check.data["passed"] is True


def test_a_partition_runs_and_its_assets_are_kept_for_the_next_run(location: Any) -> None:
    """The default IO manager writes asset values in the location's storage folder, which
    outlives the run: a later run of the downstream asset alone reads what this one wrote."""
    upstream = run_of(
        "daily_assets",
        **{"dagster/partition": "2026-01-02", "tether/asset_selection": '["daily_events"]'},
    )
    assert execute(location, upstream)[0] == Outcome.SUCCESS
    downstream = run_of(
        "daily_assets",
        **{"dagster/partition": "2026-01-02", "tether/asset_selection": '["daily_event_counts"]'},
    )
    outcome, events = execute(location, downstream)
    assert outcome == Outcome.SUCCESS, [e.message for e in events]
    [m] = [e for e in events if e.type == EventType.ASSET_MATERIALIZATION]
    assert (m.data["asset_key"], m.data["partition"]) == ("daily_event_counts", "2026-01-02")


def test_a_bad_config_fails_the_run_before_it_starts(location: Any) -> None:
    outcome, events = execute(location, run_of("etl", {"ops": {"extract": {"config": {}}}}))
    assert outcome == Outcome.FAILURE
    [event] = events
    assert event.type == EventType.RUN_FAILURE
    assert event.data["errors"] == [
        {"field": "ops.extract.config.source", "message": event.data["errors"][0]["message"]}
    ]


UNSUPPORTED = """
import dagster as dg

@dg.asset
def source() -> int:
    return 1

@dg.op
def work() -> int:
    return 1

@dg.job(executor_def=dg.multiprocess_executor)
def parallel():
    work()

@dg.asset_sensor(asset_key=dg.AssetKey("source"), job=parallel)
def on_source(context, event):
    yield dg.RunRequest()

defs = dg.Definitions(assets=[source], jobs=[parallel], sensors=[on_source])
"""


def test_what_tether_cannot_honour_is_named_at_load(tmp_path: Path) -> None:
    """A project with a multiprocess executor and an asset sensor loads; the snapshot says,
    once each, what Tether does instead (the location's page shows these), before any run."""
    project = write(tmp_path, {"unsupported.py": UNSUPPORTED})
    loaded = load_location(dagster_target(python_file=str(project / "unsupported.py")))
    assert not isinstance(loaded, LoadError), loaded.traceback
    snapshot = loaded.snapshot()
    executor = [w for w in snapshot.warnings if "job parallel" in w]
    assert executor and "multiprocess" in executor[0] and "in-process" in executor[0]
    sensor = [w for w in snapshot.warnings if "on_source" in w]
    assert len(sensor) == 1
    assert [s.name for s in snapshot.sensors] == []  # not served, and said so
    # The job itself runs, in process.
    outcome, events = execute(loaded, run_of("parallel"))
    assert outcome == Outcome.SUCCESS and tether_steps(events) == {"work": "SUCCESS"}


def test_redacted_errors_and_masked_secrets_hold_for_dagster_runs(
    location: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the run's log settings redacting errors and masking a secret, nothing of the
    user's error text (its message, causes, traceback, a retry's error) nor the secret's value
    leaves with the events; the full text is in the worker's own output, under its ID."""
    from tether_api.logs import LogForwarding
    from tether_sdk.run_worker.masking import Masker
    from tether_sdk.run_worker.policy import LogPolicy

    written: list[str] = []
    policy = LogPolicy(
        LogForwarding.ALL,
        redact_errors=True,
        masker=Masker.from_names(["ACME_SOURCE"], {"ACME_SOURCE": "s3://secret-bucket"}),
        write=written.append,
    )
    leaked: list[str] = []
    for job, config in (
        ("fails", {}),
        ("flaky", {}),
        ("etl", {"ops": {"extract": {"config": {"source": "s3://secret-bucket"}}}}),
    ):
        events = MemoryEvents()
        events.policy = policy.apply
        location.execute(RunContext(run=run_of(job, config), emitter=events, cancel=CancelState()))
        text = "\n".join(e.model_dump_json() for e in events.run_events())
        for secret in ("payload has no 'missing' field", "KeyError", "dropped the connection"):
            if secret in text:
                leaked.append(f"{job}: {secret}")
        if "s3://secret-bucket" in text:
            leaked.append(f"{job}: the masked value")
    assert leaked == []
    kept = "\n".join(written)
    assert "payload has no 'missing' field" in kept and "KeyError" in kept


def test_a_run_leaves_the_processs_signal_handlers_as_they_were(location: Any) -> None:
    """Dagster maps SIGTERM to SIGINT's handler when its run ends; a run worker's handlers
    (and a test process's) are put back, or a process started later would inherit them."""
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    execute(location, run_of("fanout"))
    assert {s: signal.getsignal(s) for s in before} == before


PARTITIONED_CONFIG = """
import dagster as dg


@dg.static_partitioned_config(partition_keys=["eu", "us"])
def by_region(region: str) -> dict:
    return {"ops": {"count": {"config": {"region": region}}}}


@dg.op(config_schema={"region": str})
def count(context) -> str:
    context.log.info(f"counting {context.op_config['region']}")
    return context.op_config["region"]


@dg.job(config=by_region)
def regional():
    count()


defs = dg.Definitions(jobs=[regional])
"""


def test_a_partition_with_no_config_of_its_own_runs_with_its_partitions(tmp_path: Path) -> None:
    """A partitioned config supplies the op's config: the run, with only its partition tag,
    runs with it (Tether's own additions to the config must not replace it)."""
    project = write(tmp_path, {"regional.py": PARTITIONED_CONFIG})
    loaded = load_location(dagster_target(python_file=str(project / "regional.py")))
    assert not isinstance(loaded, LoadError), loaded.traceback
    tags = {"dagster/partition": "us"}
    assert loaded.validate(ValidateRequest(job="regional", tags=tags)).valid
    outcome, events = execute(loaded, run_of("regional", **tags))
    assert outcome == Outcome.SUCCESS, [e.message for e in events]
    assert ("count", "counting us") in [(e.step, e.message) for e in events if e.type == "LOG"]
