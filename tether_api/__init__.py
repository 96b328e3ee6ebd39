"""Tether's shared API models: the contract between control plane, agent, SDK and CLI.

Only pydantic is needed, so user-code images can import this package.
"""

from tether_api.enums import (
    TERMINAL_RUN_STATUSES,
    CodeLocationStatus,
    EventType,
    RequestType,
    RunStatus,
)

API_PREFIX = "/api/v1"

__all__ = [
    "API_PREFIX",
    "TERMINAL_RUN_STATUSES",
    "CodeLocationStatus",
    "EventType",
    "RequestType",
    "RunStatus",
]
