"""Validation of the names that appear in URLs and workflow IDs, and the default agent
queue's name."""

import re
from typing import Annotated

from pydantic import StringConstraints

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
NAME_RE = re.compile(NAME_PATTERN)

# Organization, deployment, code location, job and agent names: safe in URLs, labels and
# Temporal workflow IDs (which use ':' as the separator, so ':' is not allowed here).
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

# The agent queue of a code location that names none (``agent_queue`` unset), and the one an
# agent serves unless told otherwise (``tether agent run --queue``). The control plane routes
# requests by it and the agent derives its Temporal task queue from it: both import it here.
DEFAULT_AGENT_QUEUE = "default"


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is a valid name, else raise ``ValueError`` naming the rule."""
    if not NAME_RE.match(value):
        raise ValueError(
            f"invalid {what} {value!r}: use 1-63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value
