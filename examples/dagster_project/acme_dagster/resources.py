"""Resources: a warehouse connection for `etl`, and a teardown marker for `slow`."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field

# Where TeardownMarker writes when its `path` is not configured.
TEARDOWN_MARKER_ENV = "ACME_TEARDOWN_MARKER"


class WarehouseResource(dg.ConfigurableResource):
    """A fake warehouse connection: opened before the run's first step, closed after its last."""

    dsn: str = Field(default="memory://acme", description="Where the warehouse lives.")

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["WarehouseResource"]:
        log = dg.get_dagster_logger()  # its lines are the run's log lines, as context.log's
        log.info(f"warehouse: connecting to {self.dsn}")
        try:
            yield self
        finally:
            # Runs however the run ends: success, failure or termination.
            log.info(f"warehouse: connection to {self.dsn} closed")

    def write(self, table: str, rows: list[int]) -> int:
        """Pretends to insert rows; returns how many were written."""
        return len(rows)


class TeardownMarker(dg.ConfigurableResource):
    """Appends the run's ID to a file (`path`, else $ACME_TEARDOWN_MARKER) when torn down."""

    # So that tests can see that teardown ran, after a terminated run say.
    path: str | None = Field(
        default=None,
        description=f"The file the run ID is appended to at teardown, else ${TEARDOWN_MARKER_ENV}.",
    )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        target = self.path or os.environ.get(TEARDOWN_MARKER_ENV)
        log = dg.get_dagster_logger()
        log.info(f"teardown_marker: torn down (marker file: {target or 'none'})")
        if target:
            with Path(target).open("a", encoding="utf-8") as marker:
                marker.write(f"{context.run.run_id if context.run else 'no run'}\n")
