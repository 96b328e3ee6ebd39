"""The one wording of an unknown run config key.

Said alike by the SDK (from the job's config model) and the control plane (from the job's JSON
schema), so the CLI, the launchpad and a failed run all name the key and what is allowed the
same way, e.g. ``fail_lod: unknown key; this job's config takes city, fail_load``.
"""

from collections.abc import Iterable, Sequence

UNKNOWN_KEY_TYPE = "additionalProperties"
# A model with hundreds of fields would bury the point: the first ones, then how many more.
MAX_LISTED_KEYS = 40


def unknown_key_message(parent: Sequence[str | int], allowed: Iterable[str]) -> str:
    """The message for a key the object at ``parent`` (a path in the run config, empty for the
    config itself) does not define; ``allowed`` are the keys it does take."""
    names = sorted(set(allowed))
    owner = ".".join(str(p) for p in parent) or "this job's config"
    if not names:
        return f"unknown key; {owner} takes no keys"
    listed = ", ".join(names[:MAX_LISTED_KEYS])
    if len(names) > MAX_LISTED_KEYS:
        listed += f" and {len(names) - MAX_LISTED_KEYS} more"
    return f"unknown key; {owner} takes {listed}"
