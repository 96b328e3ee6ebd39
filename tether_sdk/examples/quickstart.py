"""The quickstart code location: an ETL job, a few assets, a schedule, a sensor.

Serve it with ``tether code-server --module tether_sdk.examples.quickstart``.
``fail: true`` makes ``load`` fail; ``sleep_seconds`` makes ``transform`` slow (for
termination tests).
"""

import time

from pydantic import BaseModel, Field

from tether_sdk import (
    Definitions,
    RunRequest,
    SensorContext,
    StepContext,
    asset,
    asset_job,
    job,
    schedule,
    sensor,
    step,
)


class EtlConfig(BaseModel):
    source: str = Field(description="Where to read from, e.g. s3://bucket/orders.csv")
    rows: int = Field(default=10, ge=0, le=1_000_000)
    fail: bool = Field(default=False, description="Make the load step fail.")
    sleep_seconds: float = Field(default=0, ge=0, description="Make the transform step slow.")


@step
def extract(ctx: StepContext, config: EtlConfig) -> list[int]:
    """Read the source rows."""
    ctx.log.info("extracting %d rows from %s", config.rows, config.source)
    print(f"extract: read {config.rows} rows")
    return list(range(config.rows))


@step
def transform(ctx: StepContext, config: EtlConfig, extract: list[int]) -> list[int]:
    """Double every value (slowly, if asked to)."""
    if config.sleep_seconds:
        ctx.log.info("sleeping %.1fs", config.sleep_seconds)
        time.sleep(config.sleep_seconds)
    return [x * 2 for x in extract]


@step
def load(ctx: StepContext, config: EtlConfig, transform: list[int]) -> int:
    """Write the result (or fail, if asked to)."""
    if config.fail:
        raise RuntimeError(f"load failed as requested (fail=true) for {config.source}")
    total = sum(transform)
    ctx.add_metadata(rows=len(transform), total=total)
    print(f"load: wrote {len(transform)} rows, total {total}")
    return total


@step
def report(ctx: StepContext, load: int) -> None:
    """Runs after load: skipped when load fails."""
    ctx.log.info("report: total is %d", load)


etl = job(
    "etl",
    steps=[extract, transform, load, report],
    config=EtlConfig,
    description="Extract, transform and load some numbers.",
    tags={"team": "data"},
)


@asset
def raw_orders() -> list[dict]:
    """Orders as they arrive."""
    return [{"id": i, "amount": 10.0 * i, "region": "eu" if i % 2 else "us"} for i in range(1, 7)]


@asset(group="sales")
def order_totals(ctx: StepContext, raw_orders: list[dict]) -> dict[str, float]:
    """Order amount per region."""
    totals: dict[str, float] = {}
    for order in raw_orders:
        totals[order["region"]] = totals.get(order["region"], 0.0) + order["amount"]
    ctx.add_metadata(regions=len(totals))
    return totals


@asset(group="sales", description="The region that sold the most.")
def top_region(order_totals: dict[str, float]) -> str:
    return max(order_totals, key=order_totals.__getitem__)


refresh_sales = asset_job("refresh_sales", assets=[raw_orders, order_totals, top_region])

nightly_etl = schedule(
    "nightly_etl", cron="0 3 * * *", job=etl, run_config={"source": "s3://example/orders.csv"}
)


@sensor(job=refresh_sales, minimum_interval_seconds=60)
def hourly_sales_refresh(context: SensorContext) -> RunRequest:
    """Refresh the sales assets once an hour: each hour's run key makes one run, however
    often the sensor is evaluated within that hour."""
    return RunRequest(run_key=f"{context.tick_time:%Y-%m-%dT%H}")


defs = Definitions(
    jobs=[etl, refresh_sales],
    assets=[raw_orders, order_totals, top_region],
    schedules=[nightly_etl],
    sensors=[hourly_sales_refresh],
)
