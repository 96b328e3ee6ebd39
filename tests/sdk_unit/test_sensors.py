"""Sensors and code-evaluated schedules in the SDK: declaring them (mistakes are load errors
that name the fix), evaluating them (what a user function returns or raises becomes the
tick's answer), and the code server's ``POST /ticks`` as a real subprocess."""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tether_api.enums import TickKind
from tether_api.ticks import EndedRun, TickRequest, TickResponse
from tether_sdk import (
    Definitions,
    RunRequest,
    SensorResult,
    SkipReason,
    job,
    run_status_sensor,
    schedule,
    sensor,
    step,
)
from tether_sdk.errors import DefinitionError
from tether_sdk.ticks import TickRunner, evaluate

from .conftest import CodeServerProcess

AT = datetime(2030, 1, 1, 3, tzinfo=UTC)


class Config(BaseModel):
    name: str


@step
def one(config: Config) -> str:
    return config.name


ingest = job("ingest", steps=[one], config=Config)


def tick(name: str, kind: TickKind = TickKind.SENSOR, **extra: Any) -> TickRequest:
    return TickRequest(kind=kind, name=name, tick_time=AT, **extra)


def defs_with(*sensors: Any, schedules: tuple[Any, ...] = ()) -> Definitions:
    return Definitions(jobs=[ingest], sensors=list(sensors), schedules=list(schedules))


def test_declaring_mistakes_name_the_fix() -> None:
    with pytest.raises(DefinitionError, match="job= is required"):
        sensor(job=None, name="x")(lambda context: None)
    with pytest.raises(DefinitionError, match="minimum_interval_seconds must be a positive"):
        sensor(job=ingest, name="x", minimum_interval_seconds=0)(lambda context: None)
    with pytest.raises(DefinitionError, match="run_status must be 'SUCCESS' or 'FAILURE'"):
        run_status_sensor(run_status="CANCELED", name="x")(lambda context: None)
    with pytest.raises(DefinitionError, match="did you forget @sensor"):
        Definitions(jobs=[ingest], sensors=[lambda context: None])

    @sensor(job=job("other", steps=[one], config=Config))
    def orphan(context: Any) -> None:
        return None

    with pytest.raises(DefinitionError, match="add it to Definitions"):
        defs_with(orphan)
    with pytest.raises(DefinitionError, match="run_config is a dict or a function"):
        schedule("s", cron="0 3 * * *", job=ingest, run_config=[1])  # type: ignore[arg-type]


def test_the_snapshot_describes_sensors_and_code_configs() -> None:
    @sensor(job=ingest, minimum_interval_seconds=5, default_status="RUNNING")
    def watch(context: Any) -> None:
        """Watches the bucket."""

    @run_status_sensor(run_status="FAILURE", monitored_jobs=[ingest])
    def on_failure(context: Any) -> None:
        return None

    coded = schedule("coded", cron="0 3 * * *", job=ingest, run_config=lambda c: {"name": "x"})
    snap = defs_with(watch, on_failure, schedules=(coded,)).snapshot()
    [w, f] = snap.sensors
    assert (w.name, w.kind, w.job, w.minimum_interval_seconds) == ("watch", "standard", "ingest", 5)
    assert w.default_status == "RUNNING" and w.description == "Watches the bucket."
    assert (f.kind, f.job, f.monitored_jobs, f.monitored_status) == (
        "run_status",
        None,
        ["ingest"],
        "FAILURE",
    )
    [s] = snap.schedules
    assert s.config_from_code and s.run_config == {}


def test_what_a_sensor_returns_becomes_run_requests_and_a_cursor() -> None:
    @sensor(job=ingest)
    def listing(context: Any) -> Any:
        seen = int(context.cursor or 0)
        return SensorResult(
            [RunRequest(run_key=f"f{i}", run_config={"name": f"f{i}"}) for i in range(seen, 3)],
            cursor="3",
        )

    @sensor(job=ingest)
    def generator(context: Any) -> Any:
        context.update_cursor("moved")
        yield RunRequest(run_config={"name": "g"}, tags={"origin": "gen"})

    @sensor(job=ingest)
    def skipping(context: Any) -> Any:
        return SkipReason("nothing new in the bucket")

    defs = defs_with(listing, generator, skipping)
    got = evaluate(defs, tick("listing", cursor="1"))
    assert got.error is None and got.cursor == "3"
    assert [(r.run_key, r.job, r.run_config) for r in got.run_requests] == [
        ("f1", "ingest", {"name": "f1"}),
        ("f2", "ingest", {"name": "f2"}),
    ]
    gen = evaluate(defs, tick("generator", cursor="old"))
    assert gen.cursor == "moved" and gen.run_requests[0].tags == {"origin": "gen"}
    skipped = evaluate(defs, tick("skipping", cursor="kept"))
    assert skipped.run_requests == [] and skipped.skip_reason == "nothing new in the bucket"
    assert skipped.cursor == "kept"  # not updated: the cursor it was given


def test_a_sensor_that_raises_or_returns_nonsense_is_an_error_with_its_traceback() -> None:
    @sensor(job=ingest)
    def raising(context: Any) -> Any:
        raise ConnectionError("bucket unreachable")

    @sensor(job=ingest)
    def nonsense(context: Any) -> Any:
        return {"name": "a dict is not a run request"}

    @sensor(job=ingest)
    def bad_config(context: Any) -> Any:
        return [RunRequest(run_key="k", run_config={"nme": "typo"})]

    @sensor(job=ingest)
    def unknown_job(context: Any) -> Any:
        return RunRequest(job="nope", run_config={})

    defs = defs_with(raising, nonsense, bad_config, unknown_job)
    raised = evaluate(defs, tick("raising", cursor="c"))
    assert raised.error is not None and raised.cursor is None and raised.run_requests == []
    assert raised.error.message == "ConnectionError: bucket unreachable"
    assert raised.error.traceback and "test_sensors.py" in raised.error.traceback
    assert "return a RunRequest" in (evaluate(defs, tick("nonsense")).error or _no()).message
    config = evaluate(defs, tick("bad_config")).error or _no()
    assert "run request 0 (run_key 'k')" in config.message and "name: Field required" in (
        config.message
    )
    unknown = evaluate(defs, tick("unknown_job")).error or _no()
    assert "unknown job 'nope' (known jobs: ingest)" in unknown.message
    missing = evaluate(defs, tick("gone")).error or _no()
    assert "no sensor 'gone'" in missing.message


def _no() -> Any:
    raise AssertionError("expected an error")


def test_a_run_status_sensor_is_called_for_each_run() -> None:
    calls: list[str] = []

    @run_status_sensor(run_status="FAILURE", job=ingest)
    def react(context: Any) -> Any:
        calls.append(context.run.id)
        if context.run.job == "quiet":
            return None
        return RunRequest(run_key=context.run.id, run_config={"name": context.run.id})

    runs = [
        EndedRun(id=f"r{i}", code_location="l", job=j, status="FAILURE")
        for i, j in enumerate(["etl", "quiet", "etl"])
    ]
    got = evaluate(defs_with(react), tick("react", runs=runs))
    assert calls == ["r0", "r1", "r2"]
    assert [r.run_key for r in got.run_requests] == ["r0", "r2"]


def test_a_schedule_config_function_gets_the_tick_time() -> None:
    def config_of(context: Any) -> Any:
        if context.scheduled_time.weekday() == 6:
            return SkipReason("no loads on Sundays")
        return {"name": f"orders-{context.scheduled_time:%Y%m%d}.csv"}

    coded = schedule("coded", cron="0 3 * * *", job=ingest, run_config=config_of)
    defs = defs_with(schedules=(coded,))
    got = evaluate(defs, tick("coded", TickKind.SCHEDULE))
    assert [r.run_config for r in got.run_requests] == [{"name": "orders-20300101.csv"}]
    sunday = tick("coded", TickKind.SCHEDULE).model_copy(
        update={"tick_time": datetime(2030, 1, 6, 3, tzinfo=UTC)}
    )
    assert evaluate(defs, sunday).skip_reason == "no loads on Sundays"
    none = schedule("none", cron="0 3 * * *", job=ingest, run_config=lambda c: None)
    error = evaluate(defs_with(schedules=(none,)), tick("none", TickKind.SCHEDULE)).error
    assert error is not None and "return a dict (the run config)" in error.message


def test_the_runner_bounds_a_slow_function_and_refuses_it_until_it_returns() -> None:
    def slow(request: TickRequest) -> TickResponse:
        time.sleep(0.6)
        return TickResponse(cursor="late")

    runner = TickRunner(slow)
    first = runner.run(tick("slow", timeout_seconds=0.1))
    assert first.error is not None and "did not return within its timeout of 0.1 s" in (
        first.error.message
    )
    busy = runner.run(tick("slow", timeout_seconds=0.1))
    assert busy.error is not None and "still running past its timeout" in busy.error.message
    time.sleep(0.7)
    assert runner.run(tick("slow", timeout_seconds=2)).cursor == "late"


SENSING = Path(__file__).parent.parent / "e2e" / "locations" / "sensing.py"


def test_the_code_server_evaluates_ticks(
    code_server: Callable[..., CodeServerProcess], tmp_path: Path
) -> None:
    (tmp_path / "x.csv").write_text("")
    server = code_server("--python-file", str(SENSING), env={"SENSING_INBOX": str(tmp_path)})
    r = server.client.post("/ticks", content=tick("inbox").model_dump_json())
    assert r.status_code == 200, r.text
    got = TickResponse.model_validate(r.json())
    assert [q.run_key for q in got.run_requests] == ["x.csv"] and got.cursor == "1 files"
    bad = server.client.post("/ticks", json={"kind": "sensor"})
    assert bad.status_code == 400 and "invalid TickRequest" in bad.json()["detail"]
