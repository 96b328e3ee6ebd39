"""The audit log: who (which token) did what, and when, in an organization. Append-only."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class AuditAction(StrEnum):
    """What was done. The list grows; clients should show unknown actions as they are."""

    DEPLOYMENT_CREATE = "deployment.create"
    DEPLOYMENT_UPDATE = "deployment.update"
    LOCATION_DEPLOY = "location.deploy"
    LOCATION_REDEPLOY = "location.redeploy"
    LOCATION_REMOVE = "location.remove"
    RUN_SUBMIT = "run.submit"
    RUN_TERMINATE = "run.terminate"
    RUN_LOGS_FETCH = "run.logs_fetch"  # a 'local' run's output, fetched from its agent
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    SIGN_IN_LINK_CREATE = "sign_in_link.create"
    SESSION_START = "session.start"
    SESSION_END = "session.end"
    ALERT_POLICY_PUT = "alert_policy.put"
    ALERT_POLICY_DELETE = "alert_policy.delete"
    SCHEDULE_START = "schedule.start"
    SCHEDULE_STOP = "schedule.stop"
    SENSOR_START = "sensor.start"
    SENSOR_STOP = "sensor.stop"
    BACKFILL_LAUNCH = "backfill.launch"
    BACKFILL_CANCEL = "backfill.cancel"
    BACKFILL_RESUME = "backfill.resume"


class AuditEntry(BaseModel):
    """One thing someone did."""

    id: int = Field(description="Increases with time; pages go by it.")
    at: datetime = Field(description="When it was done (committed with the action itself).")
    action: str = Field(description="What was done, e.g. 'run.submit' (see AuditAction).")
    actor_token_id: int | None = Field(
        description="The token that did it; unset for the control plane's own actions "
        "(actor_kind 'system', e.g. `tether controlplane bootstrap` minting tokens)."
    )
    actor_name: str = Field(
        description="That token's name when it acted (a session's or sign-in link's: its user "
        "token's); for a system action, what acted, e.g. 'bootstrap'."
    )
    actor_kind: str = Field(
        description="That token's kind: user, session (the web UI, acting for a user token), "
        "signin (a sign-in link starting a session), nexus (an agent's Nexus service starting "
        "or terminating a run for a Temporal workflow); or system (no token: the control plane "
        "itself)."
    )
    deployment: str | None = Field(
        default=None, description="The deployment it concerned; unset for organization-wide."
    )
    target: str = Field(description="What it was done to: a location, run id, token, policy.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="More about it; never a secret."
    )


class AuditPage(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the older entries; unset at the end."
    )
