"""How long a deployment keeps what only piles up: finished runs (with their events and
tags), ticks, code-location status histories, delivered alerts, finished backfills and the
asset catalog's history. The control plane's retention pass removes what is past its rule in
small batches; a run that has not ended is never removed.

0 means "keep forever" for every field. The defaults keep a year of runs.

Shared by the control plane and the CLI.
"""

from typing import Annotated

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field

from tether_api.wire import JSON_NUMBER

# Floats of days: 0.5 is twelve hours. At most ten years; 0 keeps forever.
Days = Annotated[float, Ge(0), Le(3650), JSON_NUMBER]
Count = Annotated[int, Ge(0), Le(1_000_000_000), JSON_NUMBER]

DEFAULT_RUN_DAYS = 365.0
DEFAULT_TICK_DAYS = 30.0
DEFAULT_STATUS_HISTORY_DAYS = 90.0
DEFAULT_ALERT_DAYS = 90.0
DEFAULT_ASSET_EVENT_DAYS = 730.0


class RetentionSettings(BaseModel):
    """A deployment's retention. Each field is one rule; 0 turns it off (kept forever)."""

    model_config = ConfigDict(extra="forbid")

    run_days: Days = Field(
        default=DEFAULT_RUN_DAYS,
        description="Finished runs (SUCCESS, FAILURE, CANCELED), with their events, tags and "
        "run tokens, are removed this many days after they were created. Runs that have not "
        "ended are never removed. 0: no age rule.",
    )
    max_runs: Count = Field(
        default=0,
        description="Keep at most this many runs, the newest: older finished runs are "
        "removed (runs that have not ended stay, and count). 0: no count rule.",
    )
    tick_days: Days = Field(
        default=DEFAULT_TICK_DAYS,
        description="Schedule and sensor ticks are removed this many days after their tick "
        "time (a tick still being evaluated is kept). SKIPPED sensor ticks go sooner, after "
        "the control plane's skipped_tick_retention_days. 0: no age rule.",
    )
    status_history_days: Days = Field(
        default=DEFAULT_STATUS_HISTORY_DAYS,
        description="Code locations' status changes are removed after this many days; each "
        "location keeps its newest 50 (what its page shows) and the changes its current "
        "outage is dated from. 0: kept forever.",
    )
    alert_days: Days = Field(
        default=DEFAULT_ALERT_DAYS,
        description="Alerts delivered (or given up on) are removed this many days after "
        "they were decided; pending ones are kept. 0: kept forever.",
    )
    backfill_days: Days = Field(
        default=DEFAULT_RUN_DAYS,
        description="Finished backfills, with their partition rows, are removed this many "
        "days after they ended; active ones are kept whatever their age. 0: kept forever.",
    )
    asset_event_days: Days = Field(
        default=DEFAULT_ASSET_EVENT_DAYS,
        description="The asset catalog's history (materializations, observations, check "
        "results) is removed after this many days, except each asset's and partition's "
        "latest materialization; the catalog's current state (assets, partitions) is never "
        "removed. Longer than runs by default: the catalog outlives the runs that fed it. "
        "0: kept forever.",
    )

    def describe(self) -> list[tuple[str, str]]:
        """(what, rule) pairs in words, for the CLI and the web UI."""

        def days(value: float) -> str:
            return "forever" if value == 0 else f"{value:g} days"

        return [
            ("runs kept", days(self.run_days)),
            ("max runs", "no limit" if self.max_runs == 0 else f"{self.max_runs:,}"),
            ("ticks kept", days(self.tick_days)),
            ("location history", days(self.status_history_days)),
            ("alerts kept", days(self.alert_days)),
            ("backfills kept", days(self.backfill_days)),
            ("asset history", days(self.asset_event_days)),
        ]
