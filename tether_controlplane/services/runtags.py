"""A run's Dagster tags checked at creation against its job's snapshot: a partition that
does not exist and an asset the job does not hold are refused with a 422 naming the tag, as
a bad config field is (the code server checks them again before the run starts)."""

from tether_api.runtags import ASSET_SELECTION_TAG, PARTITION_TAG, asset_selection
from tether_api.snapshot import JobSnapshot, PartitionKeys
from tether_api.wire import FieldError

SHOWN_KEYS = 5


def _loc(tag: str) -> list[str | int]:
    return ["body", "tags", tag]


def tag_errors(job: JobSnapshot, tags: dict[str, str]) -> list[FieldError]:
    errors: list[FieldError] = []
    partition = tags.get(PARTITION_TAG)
    if partition is not None:
        problem = _partition_problem(job, partition)
        if problem:
            errors.append(FieldError(loc=_loc(PARTITION_TAG), msg=problem, type="partition"))
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


def _partition_problem(job: JobSnapshot, key: str) -> str | None:
    partitions = job.partitions
    if partitions is None:
        return f"job {job.name!r} is not partitioned"
    if partitions.kind == "multi":
        parts = key.split("|")
        if len(parts) != len(partitions.dimensions):
            names = "|".join(d.name for d in partitions.dimensions)
            return f"a key of job {job.name!r} is one key of each dimension, as {names}"
        for part, dimension in zip(parts, partitions.dimensions, strict=True):
            if not _known(dimension, part):
                return f"partition {key!r} does not exist in job {job.name!r} ({dimension.name})"
        return None
    if not _known(partitions, key):
        shown = ", ".join(partitions.keys[:SHOWN_KEYS])
        return f"partition {key!r} does not exist in job {job.name!r} (its keys: {shown}, ...)"
    return None


def _known(partitions: PartitionKeys, key: str) -> bool:
    """Whether ``key`` is one of the keys; True when the snapshot does not list them all
    (dynamic partitions, or more time windows than it lists): the code server decides."""
    complete = partitions.count is not None and partitions.count == len(partitions.keys)
    return key in partitions.keys if complete and partitions.kind != "dynamic" else True
