"""The project's one `Definitions`: what `dagster dev` and Tether load."""

import dagster as dg

from .assets import (
    customers,
    daily_assets,
    daily_event_counts,
    daily_events,
    orders,
    regional_sales,
    revenue_by_customer,
    revenue_is_positive,
)
from .automation import etl_batches, etl_nightly
from .jobs import etl, fails, fanout_job, flaky, slow
from .resources import TeardownMarker, WarehouseResource

defs = dg.Definitions(
    jobs=[etl, fanout_job, flaky, fails, slow, daily_assets],
    assets=[
        orders,
        customers,
        revenue_by_customer,
        regional_sales,
        daily_events,
        daily_event_counts,
    ],
    asset_checks=[revenue_is_positive],
    schedules=[etl_nightly],
    sensors=[etl_batches],
    resources={
        "warehouse": WarehouseResource(),
        "teardown_marker": TeardownMarker(),
    },
)
