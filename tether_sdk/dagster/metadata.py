"""Dagster metadata as JSON: a ``MetadataValue`` by its value, anything else not JSON by its
text (for the snapshot and for events)."""

from typing import Any


def json_metadata(raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(raw or {}).items():
        value = getattr(value, "value", value)
        out[str(key)] = value if isinstance(value, str | int | float | bool | None) else str(value)
    return out
