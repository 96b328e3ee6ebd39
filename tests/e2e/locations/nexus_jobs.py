"""Jobs the Nexus tests run from Temporal workflows: one that writes an asset and says how many
rows, one whose step fails, one that runs as long as its config says."""

import time

from pydantic import BaseModel

from tether_sdk import Definitions, StepContext, asset, job, step


@asset
def orders(ctx: StepContext) -> int:
    ctx.add_metadata(rows=42, path="/data/orders.parquet")
    return 42


@step
def bad_row() -> None:
    raise ValueError("bad row 7 in orders.csv")


class NapConfig(BaseModel):
    seconds: float = 30


@step
def nap(config: NapConfig) -> None:
    time.sleep(config.seconds)


defs = Definitions(
    jobs=[
        job("load_orders", steps=[orders]),
        job("fails", steps=[bad_row]),
        job("nap", steps=[nap], config=NapConfig),
    ]
)
