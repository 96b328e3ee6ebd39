"""A run's tags checked at creation against its job's snapshot: a partition that does not
exist (or a missing one, a range of a Dagster job) and an asset the job does not hold are
refused with a 422 naming the tag, as a bad config field is (the code server checks them
again before the run starts).

Which tags name a partition depends on what declared the job (``PartitionsSnapshot.
location_kind``): a Tether SDK job's run must name a key (``tether/partition``) or a range
(``tether/partition_range_start``/``_end``); a Dagster job's run names a key
(``dagster/partition``) or none, as Dagster allows."""

from collections.abc import Mapping
from datetime import datetime

from tether_api import partitions as keys_of
from tether_api.enums import CodeLocationKind
from tether_api.runtags import (
    ASSET_SELECTION_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    TETHER_PARTITION_TAG,
    PartitionTagError,
    asset_selection,
    tether_partition_keys,
)
from tether_api.snapshot import JobSnapshot
from tether_api.wire import FieldError
from tether_controlplane.tables import utcnow

TETHER_TAGS = (TETHER_PARTITION_TAG, PARTITION_RANGE_START_TAG, PARTITION_RANGE_END_TAG)


def _loc(tag: str) -> list[str | int]:
    return ["body", "tags", tag]


def _error(tag: str, msg: str) -> FieldError:
    return FieldError(loc=_loc(tag), msg=msg, type="partition")


def tag_errors(
    job: JobSnapshot, tags: Mapping[str, str], now: datetime | None = None
) -> list[FieldError]:
    errors = partition_errors(job, tags, now or utcnow())
    try:
        selection = asset_selection(tags)
    except ValueError as exc:
        errors.append(FieldError(loc=_loc(ASSET_SELECTION_TAG), msg=str(exc), type="json"))
        selection = None
    if selection is not None:
        held = {
            k for s in job.steps for k in (s.asset_keys or ([s.asset_key] if s.asset_key else []))
        }
        for key in selection:
            if key not in held:
                errors.append(
                    FieldError(
                        loc=_loc(ASSET_SELECTION_TAG),
                        msg=f"asset {key!r} is not in job {job.name!r} (its assets: "
                        f"{', '.join(sorted(held)) or 'none'})",
                        type="asset",
                    )
                )
    return errors


def partition_errors(job: JobSnapshot, tags: Mapping[str, str], now: datetime) -> list[FieldError]:
    """What is wrong with the partition a run of ``job`` names in ``tags`` (at most one
    error: the first found)."""
    name = f"job {job.name!r}"
    p = job.partitions
    named = [t for t in (PARTITION_TAG, *TETHER_TAGS) if t in tags]
    if p is None:
        if named:
            return [_error(named[0], f"{name} is not partitioned: remove tag {named[0]}")]
        return []
    if p.location_kind != CodeLocationKind.TETHER:
        wrong = [t for t in TETHER_TAGS if t in tags]
        if wrong:
            return [
                _error(
                    wrong[0],
                    f"{name} is a Dagster job: name its partition with tag {PARTITION_TAG} "
                    "(ranges are for Tether SDK jobs: launch a backfill of Dagster partitions)",
                )
            ]
        key = tags.get(PARTITION_TAG)
        if key is not None and not keys_of.has_key(p, key, now):
            return [_error(PARTITION_TAG, keys_of.unknown_key_error(p, key, now, name))]
        return []
    try:
        tether_partition_keys(p, tags, now, name)
    except PartitionTagError as exc:
        return [_error(exc.tag, str(exc))]
    return []
