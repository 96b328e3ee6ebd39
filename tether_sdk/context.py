"""The context object a step or asset receives as its ``ctx`` / ``context`` parameter."""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any


class StepContext:
    """What a running step knows about its run, and where it reports.

    ``log`` is a standard :class:`logging.Logger`; while the step runs under a run worker,
    its records (and those of the root logger) become LOG events of the run.
    """

    def __init__(
        self,
        *,
        run_id: str,
        job: str,
        step: str,
        partition_keys: Sequence[str] = (),
        partition_time_window: tuple[datetime, datetime] | None = None,
    ) -> None:
        self.run_id = run_id
        self.job = job
        self.step = step
        # The run's partitions: every key it targets, in order ([key] for one, [] for none).
        self.partition_keys: list[str] = list(partition_keys)
        # The key of a run of one partition; None for a range of several (read
        # partition_keys) or none.
        self.partition_key: str | None = (
            self.partition_keys[0] if len(self.partition_keys) == 1 else None
        )
        # Time windows: the run's window (a range: the first one's start to the last's end).
        self.partition_time_window = partition_time_window
        self.metadata: dict[str, Any] = {}
        self.log = logging.getLogger(f"tether.step.{step}")
        # Set explicitly so ctx.log.info() is not dropped by a root logger left at the
        # default WARNING level: the user asked for these lines by calling ctx.log.
        self.log.setLevel(logging.DEBUG)

    @property
    def has_partition(self) -> bool:
        """True when the run targets a partition or a range of them."""
        return bool(self.partition_keys)

    def add_metadata(self, **values: Any) -> None:
        """Attach key/values to the step's success event (and asset materialization).

        Values should be JSON-serializable; anything else is sent as its ``str()``.
        """
        self.metadata.update(values)

    def __repr__(self) -> str:
        return f"StepContext(run_id={self.run_id!r}, job={self.job!r}, step={self.step!r})"
