"""A code location that says which version of its code ran: the warm-launch redeploy test
edits CODE_VERSION in a copy of this file between two generations."""

import time

from pydantic import BaseModel

from tether_sdk import Definitions, StepContext, job, step

CODE_VERSION = "v1"


class WaitConfig(BaseModel):
    seconds: float = 0


@step
def report_version(ctx: StepContext, config: WaitConfig) -> str:
    time.sleep(config.seconds)
    # Read when the step ends: a worker forked from the old code server keeps the old code.
    ctx.log.info("code version %s", CODE_VERSION)
    return CODE_VERSION


defs = Definitions(jobs=[job("version", steps=[report_version], config=WaitConfig)])
