"""Assets: raw data under the `raw` key prefix, an analytics asset with a blocking check,
and two partitioned ones (static a/b/c, and daily from 2026-01-01)."""

import dagster as dg

# ------------------------------------------------------------------ ingest / analytics
# raw/orders and raw/customers -> revenue_by_customer, checked by revenue_is_positive.

ORDERS = [
    {"id": 1, "customer": "ada", "amount": 30.0},
    {"id": 2, "customer": "bob", "amount": 12.5},
    {"id": 3, "customer": "ada", "amount": 7.5},
    {"id": 4, "customer": "eve", "amount": 50.0},
]
CUSTOMERS = ["ada", "bob", "eve"]


@dg.asset(
    key_prefix=["raw"],
    group_name="ingest",
    kinds={"python", "csv"},
    owners=["team:data-eng", "ada@example.com"],
    description="Orders as the shop exports them, one dict per order.",
    metadata={"source": "shop-export", "expected_rows": len(ORDERS)},
    tags={"domain": "sales"},
)
def orders(context: dg.AssetExecutionContext) -> list[dict]:
    context.log.info(f"read {len(ORDERS)} orders")
    context.add_output_metadata({"rows": len(ORDERS)})
    return ORDERS


@dg.asset(
    key_prefix=["raw"],
    group_name="ingest",
    kinds={"python"},
    owners=["team:data-eng"],
    description="The customer names.",
    metadata={"source": "crm"},
)
def customers() -> list[str]:
    return CUSTOMERS


@dg.asset(
    ins={"orders": dg.AssetIn(key_prefix=["raw"])},
    deps=[customers],  # a dependency whose value is not loaded
    group_name="analytics",
    kinds={"python"},
    owners=["ada@example.com"],
    description="Revenue per customer.",
    metadata={"unit": "EUR"},
    code_version="1",
)
def revenue_by_customer(context: dg.AssetExecutionContext, orders: list[dict]) -> dict[str, float]:
    revenue: dict[str, float] = {}
    for order in orders:
        revenue[order["customer"]] = revenue.get(order["customer"], 0.0) + order["amount"]
    context.add_output_metadata({"customers": len(revenue), "total": sum(revenue.values())})
    return revenue


@dg.asset_check(
    asset=revenue_by_customer,
    blocking=True,
    description="Every customer's revenue is positive (blocks downstream assets otherwise).",
)
def revenue_is_positive(revenue_by_customer: dict[str, float]) -> dg.AssetCheckResult:
    negative = sorted(c for c, amount in revenue_by_customer.items() if amount <= 0)
    return dg.AssetCheckResult(passed=not negative, metadata={"non_positive": len(negative)})


# ------------------------------------------------------------------ partitioned

regions = dg.StaticPartitionsDefinition(["a", "b", "c"])
daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@dg.asset(
    partitions_def=regions,
    group_name="partitioned",
    kinds={"python"},
    description="Sales of one region (partitions a, b, c).",
)
def regional_sales(context: dg.AssetExecutionContext) -> int:
    return {"a": 10, "b": 20, "c": 30}[context.partition_key]


@dg.asset(
    partitions_def=daily,
    group_name="partitioned",
    kinds={"python"},
    description="The events of one day (daily partitions from 2026-01-01).",
)
def daily_events(context: dg.AssetExecutionContext) -> list[str]:
    day = context.partition_key  # e.g. 2026-01-02
    return [f"{day}#{i}" for i in range(int(day[-2:]))]


@dg.asset(
    partitions_def=daily,
    group_name="partitioned",
    kinds={"python"},
    description="How many events each day had.",
)
def daily_event_counts(context: dg.AssetExecutionContext, daily_events: list[str]) -> int:
    context.add_output_metadata({"events": len(daily_events)})
    return len(daily_events)


# A partitioned asset job: one run materializes one day of both daily assets. Its partitions
# definition is `daily`, inferred from the assets (define_asset_job's `partitions_def`
# argument is deprecated since Dagster 1.13: passing it warns).
daily_assets = dg.define_asset_job(
    "daily_assets",
    selection=dg.AssetSelection.assets(daily_events, daily_event_counts),
    description="One day of daily_events and daily_event_counts.",
)
