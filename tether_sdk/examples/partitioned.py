"""A partitioned code location: daily orders assets, a per-region asset, a schedule that runs
yesterday's partition every night, and an unpartitioned asset that depends on them.

Serve it with ``tether code-server --module tether_sdk.examples.partitioned``; launch a day
with the tag ``tether/partition=2024-01-31``, or a range with ``tether/partition_range_start``
and ``tether/partition_range_end``. ``fail_on`` (run config) makes ``raw_orders`` fail for
those keys, to see failed partitions.
"""

import random

from pydantic import BaseModel, Field

from tether_sdk import (
    DailyPartitions,
    Definitions,
    StaticPartitions,
    StepContext,
    asset,
    asset_job,
    schedule,
)

DAYS = DailyPartitions("2024-01-01")
REGIONS = StaticPartitions(["eu", "us", "apac"])


class OrdersConfig(BaseModel):
    fail_on: list[str] = Field(
        default_factory=list, description="Partition keys for which raw_orders fails."
    )


@asset(partitions=DAYS, group="orders")
def raw_orders(ctx: StepContext, config: OrdersConfig) -> list[float]:
    """The day's orders (one run may cover a range of days: each is read)."""
    failing = [k for k in ctx.partition_keys if k in config.fail_on]
    if failing:
        raise RuntimeError(f"raw_orders failed as requested (fail_on) for {', '.join(failing)}")
    orders: list[float] = []
    for day in ctx.partition_keys:
        rng = random.Random(day)  # the same day always has the same orders
        orders += [round(rng.uniform(5, 500), 2) for _ in range(rng.randint(10, 40))]
    ctx.log.info("read %d orders for %s", len(orders), ", ".join(ctx.partition_keys))
    ctx.add_metadata(rows=len(orders))
    return orders


@asset(partitions=DAYS, group="orders")
def daily_revenue(ctx: StepContext, raw_orders: list[float]) -> float:
    """Revenue of the day (or of the run's range of days)."""
    revenue = round(sum(raw_orders), 2)
    ctx.add_metadata(rows=len(raw_orders), revenue=revenue)
    return revenue


@asset(partitions=DAYS, group="orders", deps=["raw_orders"])
def orders_audit(ctx: StepContext) -> None:
    """Checks what raw_orders wrote (it reads storage, not raw_orders' value)."""
    window = ctx.partition_time_window
    assert window is not None
    ctx.add_metadata(rows=0, checked_from=window[0].isoformat(), checked_to=window[1].isoformat())


@asset(partitions=REGIONS, group="customers")
def regional_customers(ctx: StepContext) -> int:
    """Customers of one region."""
    count = {"eu": 120, "us": 340, "apac": 75}[ctx.partition_key or "eu"]
    ctx.add_metadata(rows=count)
    return count


@asset(group="customers", deps=[regional_customers])
def customer_summary(ctx: StepContext) -> None:
    """Unpartitioned: a summary over every region."""
    ctx.add_metadata(rows=3)


daily_orders = asset_job(
    "daily_orders", assets=[raw_orders, daily_revenue, orders_audit], config=OrdersConfig
)
regional = asset_job("regional", assets=[regional_customers])
summary = asset_job("summary", assets=[customer_summary])

defs = Definitions(
    jobs=[daily_orders, regional, summary],
    # No cron: the daily windows' own, just after midnight UTC, for yesterday's partition.
    schedules=[schedule("nightly_orders", job=daily_orders)],
)
