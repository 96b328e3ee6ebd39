"""Sensors and a schedule whose config is code, for tests/e2e/test_sensors.py.

``inbox`` asks for one run per ``*.csv`` file in $SENSING_INBOX, keyed by the file's name,
and raises while a file named BREAK is there; ``slow`` outlives its timeout; ``on_failure``
reacts to each failed run of ``fails``; ``stamped`` computes its run config from the tick.
"""

import os
import time
from pathlib import Path

from pydantic import BaseModel

from tether_sdk import (
    Definitions,
    RunRequest,
    RunStatusSensorContext,
    ScheduleContext,
    SensorContext,
    job,
    run_status_sensor,
    schedule,
    sensor,
    step,
)

INBOX = Path(os.environ.get("SENSING_INBOX", "/nonexistent"))


class FileConfig(BaseModel):
    name: str


@step
def ingest(config: FileConfig) -> str:
    return config.name


class ReactConfig(BaseModel):
    failed_run: str


@step
def react_step(config: ReactConfig) -> str:
    return config.failed_run


@step
def bad_row() -> None:
    raise ValueError("bad row 7 in orders.csv")


ingest_file = job("ingest_file", steps=[ingest], config=FileConfig)
react = job("react", steps=[react_step], config=ReactConfig)
fails = job("fails", steps=[bad_row])


@sensor(job=ingest_file, minimum_interval_seconds=1, default_status="RUNNING")
def inbox(context: SensorContext) -> list[RunRequest]:
    if (INBOX / "BREAK").exists():
        raise ValueError(f"the inbox {INBOX} is broken")
    names = sorted(p.name for p in INBOX.glob("*.csv"))
    context.update_cursor(f"{len(names)} files")
    return [RunRequest(run_key=n, run_config={"name": n}) for n in names]


@sensor(job=ingest_file, minimum_interval_seconds=1, timeout_seconds=1)
def slow(context: SensorContext) -> None:
    time.sleep(3)


@run_status_sensor(
    run_status="FAILURE",
    monitored_jobs=[fails],
    job=react,
    minimum_interval_seconds=1,
    default_status="RUNNING",
)
def on_failure(context: RunStatusSensorContext) -> RunRequest:
    return RunRequest(run_key=context.run.id, run_config={"failed_run": context.run.id})


def stamp(context: ScheduleContext) -> dict[str, str]:
    return {"name": f"orders-{context.scheduled_time:%Y%m%dT%H%M}.csv"}


stamped = schedule("stamped", cron="* * * * *", job=ingest_file, run_config=stamp)

defs = Definitions(
    jobs=[ingest_file, react, fails],
    sensors=[inbox, slow, on_failure],
    schedules=[stamped],
)
