"""The run tags that carry what a run needs beyond a job and a config: a partition (or a
range of them), an asset selection, and the backfill that launched it. Read by the control
plane (to refuse an unknown one with a 422) and by a location's code server and run workers
(to run it)."""

import json
from collections.abc import Mapping
from datetime import datetime

from tether_api import partitions as keys_of
from tether_api.enums import CodeLocationKind
from tether_api.snapshot import PartitionKeys

# Dagster's own tag for a run's partition (it sets it too when it launches a partition).
PARTITION_TAG = "dagster/partition"
# A run of some assets only: a JSON list of asset keys as Dagster prints them ("a/b").
ASSET_SELECTION_TAG = "tether/asset_selection"
# Tether SDK locations: a run's partition key, or a range of keys as its two ends (a run has
# one or the other, never both).
TETHER_PARTITION_TAG = "tether/partition"
PARTITION_RANGE_START_TAG = "tether/partition_range_start"
PARTITION_RANGE_END_TAG = "tether/partition_range_end"
# Every run a backfill launches: the backfill's public ID.
BACKFILL_TAG = "tether/backfill"

PARTITION_TAGS = (
    PARTITION_TAG,
    TETHER_PARTITION_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_RANGE_END_TAG,
)


def partition_tags(
    kind: CodeLocationKind,
    key: str | None = None,
    key_range: tuple[str, str] | None = None,
) -> dict[str, str]:
    """The tags that make a run of a location of ``kind`` target partition ``key`` or the
    range ``key_range`` (first, last); empty for neither. ValueError for both, or for a range
    of a Dagster location (ranges are for Tether SDK jobs)."""
    if key is not None and key_range is not None:
        raise ValueError("a run targets one partition key or a range of them, not both")
    if key_range is not None:
        if kind == CodeLocationKind.DAGSTER:
            raise ValueError(
                "ranges are for Tether SDK jobs: launch one run per partition of a Dagster "
                "job (a backfill does)"
            )
        first, last = key_range
        return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}
    if key is None:
        return {}
    return {PARTITION_TAG if kind == CodeLocationKind.DAGSTER else TETHER_PARTITION_TAG: key}


def run_partition(tags: Mapping[str, str]) -> str | None:
    """The single partition key a run targets (from either location kind's tag), or None."""
    key = tags.get(TETHER_PARTITION_TAG)
    return key if key is not None else tags.get(PARTITION_TAG)


def run_partition_range(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """The (first, last) range of partition keys a run targets, or None. A range with one end
    only is None here: run validation refuses it."""
    first, last = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    return (first, last) if first is not None and last is not None else None


class PartitionTagError(ValueError):
    """A run's partition tags do not fit its job; the message names the fix, ``tag`` the tag
    at fault."""

    def __init__(self, message: str, tag: str) -> None:
        super().__init__(message)
        self.tag = tag


def tether_partition_keys(
    p: PartitionKeys | None, tags: Mapping[str, str], now: datetime, owner: str, shown: str = ""
) -> tuple[list[str], str | None]:
    """The partition keys a run of a Tether SDK job with partitions ``p`` targets by its tags
    (a range: each key, in order), and its single key (None for a range or none). The one
    check of the control plane (at run creation), the code server and the run worker:
    PartitionTagError for a run that names none of a partitioned job, one of an
    unpartitioned job, an unknown key, a bad range. ``owner`` names the job ("job 'etl'"),
    ``shown`` follows "is partitioned" (e.g. the definition)."""
    key = tags.get(TETHER_PARTITION_TAG)
    first, last = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    if PARTITION_TAG in tags:
        raise PartitionTagError(
            f"{owner} is a Tether SDK job: name its partition with tag {TETHER_PARTITION_TAG}, "
            f"not {PARTITION_TAG}",
            PARTITION_TAG,
        )
    if (first is None) != (last is None):
        missing = PARTITION_RANGE_END_TAG if last is None else PARTITION_RANGE_START_TAG
        raise PartitionTagError(f"a partition range needs both ends: add tag {missing}", missing)
    if key is not None and first is not None:
        raise PartitionTagError(
            f"a run names one partition (tag {TETHER_PARTITION_TAG}) or a range (tags "
            f"{PARTITION_RANGE_START_TAG}/{PARTITION_RANGE_END_TAG}), not both",
            TETHER_PARTITION_TAG,
        )
    if p is None:
        if key is None and first is None:
            return [], None
        tag = TETHER_PARTITION_TAG if key is not None else PARTITION_RANGE_START_TAG
        raise PartitionTagError(
            f"{owner} is not partitioned: remove tag {tag}, or declare partitions= on the job "
            "(or its assets)",
            tag,
        )
    if key is None and first is None:
        # An example key (none for multi partitions: their keys are a product, not listed).
        example = keys_of.all_keys(p, now)[-1:] if p.kind != keys_of.MULTI else []
        hint = f" (e.g. {example[0]!r})" if example else ""
        raise PartitionTagError(
            f"{owner} is partitioned{shown}: name a partition with tag {TETHER_PARTITION_TAG}"
            f"{hint}, or a range with tags {PARTITION_RANGE_START_TAG} and "
            f"{PARTITION_RANGE_END_TAG}",
            TETHER_PARTITION_TAG,
        )
    if key is not None:
        if not keys_of.has_key(p, key, now):
            raise PartitionTagError(
                keys_of.unknown_key_error(p, key, now, owner), TETHER_PARTITION_TAG
            )
        return [key], key
    assert first is not None and last is not None
    try:
        return keys_of.keys_between(p, first, last, now), None
    except ValueError as exc:
        raise PartitionTagError(f"{owner}: {exc}", PARTITION_RANGE_START_TAG) from None


def asset_selection(tags: Mapping[str, str]) -> list[str] | None:
    """The asset keys a run's tags select (None: the whole job). Raises ValueError with what
    is wrong when the tag is not a JSON list of strings."""
    raw = tags.get(ASSET_SELECTION_TAG)
    if raw is None:
        return None
    example = '["raw/orders", "stats"]'
    try:
        keys = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"tag {ASSET_SELECTION_TAG} must be a JSON list of asset keys such as {example}: {exc}"
        ) from None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError(
            f"tag {ASSET_SELECTION_TAG} must be a JSON list of asset keys such as {example}"
        )
    return keys
