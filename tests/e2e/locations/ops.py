"""Jobs for the end-to-end tests: one that succeeds at once, one that fails, one that takes
as long as its config says (for terminate, kill, restart and outage tests)."""

import time

from pydantic import BaseModel

from tether_sdk import Definitions, StepContext, job, step


@step
def noop() -> int:
    return 1


@step
def bad_row() -> None:
    raise ValueError("bad row 7 in orders.csv")


class SlowConfig(BaseModel):
    seconds: float = 30
    tick: float = 0.2


@step
def slow(ctx: StepContext, config: SlowConfig) -> int:
    ticks = max(int(config.seconds / config.tick), 1)
    for i in range(ticks):
        ctx.log.info("tick %d of %d", i + 1, ticks)
        time.sleep(config.tick)
    return ticks


defs = Definitions(
    jobs=[
        job("quick", steps=[noop]),
        job("fails", steps=[bad_row]),
        job("slow", steps=[slow], config=SlowConfig),
    ]
)
