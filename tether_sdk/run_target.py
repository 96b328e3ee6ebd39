"""What a run of a Tether SDK job targets beyond its config, read from its tags: the
partition key or range, and the assets it selects. Checked the same way by the code server's
validate, the run worker and ``execute_job``, each refusing with the same message."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tether_api import partitions as keys_of
from tether_api.runtags import (
    ASSET_SELECTION_TAG,
    PartitionTagError,
    asset_selection,
    tether_partition_keys,
)

if TYPE_CHECKING:
    from tether_sdk.definitions import Job, Step


class RunTargetError(ValueError):
    """A run's tags do not fit its job; the message names the tag and the fix. ``tag``: the
    tag at fault."""

    def __init__(self, message: str, tag: str) -> None:
        super().__init__(message)
        self.tag = tag


@dataclass(frozen=True)
class RunPartitions:
    """The partitions a run targets: one key, a range (each key in order), or none."""

    keys: list[str] = field(default_factory=list)
    key: str | None = None  # set for a single key, None for a range or none
    time_window: tuple[datetime, datetime] | None = None  # a range: first start to last end


@dataclass(frozen=True)
class RunTarget:
    partitions: RunPartitions
    steps: "tuple[Step, ...]"  # those that run, in order

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]


def resolve(job: "Job", tags: Mapping[str, str], now: datetime | None = None) -> RunTarget:
    """The run's partitions and steps; RunTargetError when its tags do not fit the job."""
    return RunTarget(
        partitions=run_partitions(job, tags, now or datetime.now(UTC)),
        steps=selected_steps(job, tags),
    )


def run_partitions(job: "Job", tags: Mapping[str, str], now: datetime) -> RunPartitions:
    definition = job.partitions
    try:
        keys, key = tether_partition_keys(
            definition.snapshot() if definition is not None else None,
            tags,
            now,
            f"job {job.name!r}",
            f" ({definition!r})" if definition is not None else "",
        )
    except PartitionTagError as exc:
        raise RunTargetError(str(exc), exc.tag) from None
    if not keys:
        return RunPartitions()
    snap = definition.snapshot() if definition is not None else None
    assert snap is not None
    start, end = keys_of.time_window(snap, keys[0]), keys_of.time_window(snap, keys[-1])
    return RunPartitions(
        keys=keys, key=key, time_window=(start[0], end[1]) if start and end else None
    )


def selected_steps(job: "Job", tags: Mapping[str, str]) -> "tuple[Step, ...]":
    """The steps a run executes: all, or with an asset selection, only the selected assets'.
    A selected asset that takes the value of an unselected step cannot run without it."""
    try:
        selection = asset_selection(tags)
    except ValueError as exc:
        raise RunTargetError(str(exc), ASSET_SELECTION_TAG) from None
    if selection is None:
        return job.steps
    held = {s.asset_key: s for s in job.steps if s.asset_key}
    unknown = [k for k in selection if k not in held]
    if unknown:
        raise RunTargetError(
            f"asset {unknown[0]!r} is not in job {job.name!r} (its assets: "
            f"{', '.join(sorted(held)) or 'none'})",
            ASSET_SELECTION_TAG,
        )
    if not selection:
        raise RunTargetError(
            f"tag {ASSET_SELECTION_TAG} selects no asset: name at least one, or drop the tag "
            "to run the whole job",
            ASSET_SELECTION_TAG,
        )
    chosen = set(selection)
    for s in job.steps:
        if s.asset_key not in chosen:
            continue
        for dep in s.deps:
            if dep not in chosen:
                raise RunTargetError(
                    f"asset {s.asset_key!r} takes the value of {dep!r}: select {dep!r} too, or "
                    f"declare it with deps=[{dep!r}] (a dependency that passes no value)",
                    ASSET_SELECTION_TAG,
                )
    return tuple(s for s in job.steps if s.asset_key in chosen)
