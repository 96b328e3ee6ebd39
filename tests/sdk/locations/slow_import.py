"""A code location whose import takes a long time (a cancel must still stop it)."""

import time

from tether_sdk import Definitions, job, step

time.sleep(60)


@step
def never() -> None: ...


defs = Definitions(jobs=[job("never", steps=[never])])
