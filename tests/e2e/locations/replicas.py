"""The code location of tests/e2e/test_replicas.py: a quick job, one that streams numbered log
lines (LOG events) for as long as its config says, a schedule ticking every minute (it runs
each missed tick, so moving its cursor back makes ticks due at once), and a daily-partitioned
asset to backfill."""

import time

from pydantic import BaseModel

from tether_sdk import (
    DailyPartitions,
    Definitions,
    StepContext,
    asset,
    asset_job,
    job,
    schedule,
    step,
)


@step
def noop() -> int:
    return 1


class StreamConfig(BaseModel):
    lines: int = 50
    pause: float = 0.1


@step
def stream(ctx: StepContext, config: StreamConfig) -> int:
    for i in range(1, config.lines + 1):
        ctx.log.info("line %d of %d", i, config.lines)
        time.sleep(config.pause)
    return config.lines


@asset(partitions=DailyPartitions("2024-01-01"))
def daily_total(ctx: StepContext) -> int:
    return len(ctx.partition_keys)


quick = job("quick", steps=[noop])
daily = asset_job("daily", assets=[daily_total])

defs = Definitions(
    jobs=[quick, job("stream", steps=[stream], config=StreamConfig), daily],
    schedules=[
        schedule(
            "minutely", cron="* * * * *", job=quick, default_status="RUNNING", missed_ticks="all"
        )
    ],
)
