"""The context object a step or asset receives as its ``ctx`` / ``context`` parameter."""

import logging
from typing import Any


class StepContext:
    """What a running step knows about its run, and where it reports.

    ``log`` is a standard :class:`logging.Logger`; while the step runs under a run worker,
    its records (and those of the root logger) become LOG events of the run.
    """

    def __init__(self, *, run_id: str, job: str, step: str) -> None:
        self.run_id = run_id
        self.job = job
        self.step = step
        self.metadata: dict[str, Any] = {}
        self.log = logging.getLogger(f"tether.step.{step}")
        # Set explicitly so ctx.log.info() is not dropped by a root logger left at the
        # default WARNING level: the user asked for these lines by calling ctx.log.
        self.log.setLevel(logging.DEBUG)

    def add_metadata(self, **values: Any) -> None:
        """Attach key/values to the step's success event (and asset materialization).

        Values should be JSON-serializable; anything else is sent as its ``str()``.
        """
        self.metadata.update(values)

    def __repr__(self) -> str:
        return f"StepContext(run_id={self.run_id!r}, job={self.job!r}, step={self.step!r})"
