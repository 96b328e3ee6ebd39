"""The run tags that carry what a Dagster run needs beyond a job and a config: a partition
and an asset selection. Read by the control plane (to refuse an unknown one with a 422) and
by a Dagster location's code server and run workers (to run it)."""

import json

# Dagster's own tag for a run's partition (it sets it too when it launches a partition).
PARTITION_TAG = "dagster/partition"
# A run of some assets only: a JSON list of asset keys as Dagster prints them ("a/b").
ASSET_SELECTION_TAG = "tether/asset_selection"


def asset_selection(tags: dict[str, str]) -> list[str] | None:
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
