"""A schedule and a sensor, both on `etl`."""

import dagster as dg

from .jobs import etl

# Nightly at 03:00 Paris time, with etl's required `source`.
etl_nightly = dg.ScheduleDefinition(
    name="etl_nightly",
    job=etl,
    cron_schedule="0 3 * * *",
    execution_timezone="Europe/Paris",
    run_config={"ops": {"extract": {"config": {"source": "nightly-export"}}}},
    description="Runs etl every night at 03:00, Paris time.",
)

# How many batches etl_batches requests in all.
BATCHES = 6


@dg.sensor(job=etl, minimum_interval_seconds=30, description="Requests batches 1..6, two a tick.")
def etl_batches(context: dg.SensorEvaluationContext):  # a generator of RunRequests
    """The cursor is the last batch requested: each tick requests the next two (run keys
    batch-1, batch-2, then batch-3, batch-4, ...), and skips once all six are requested."""
    cursor = int(context.cursor or 0)
    if cursor >= BATCHES:
        yield dg.SkipReason(f"all {BATCHES} batches requested")
        return
    last = min(cursor + 2, BATCHES)
    for batch in range(cursor + 1, last + 1):
        yield dg.RunRequest(
            run_key=f"batch-{batch}",
            run_config={
                "ops": {"extract": {"config": {"source": f"batch-{batch}", "rows": batch}}}
            },
            tags={"batch": str(batch)},
        )
    context.update_cursor(str(last))
