"""Log settings on the control plane's side: which settings apply to a location and a run,
and the defensive half of their enforcement.

The run worker and the agent enforce the settings where the text is written (the user's
environment); this module enforces them again on arrival, so that an old or misconfigured
worker cannot make the control plane store log text its deployment keeps at home.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api.enums import EventType
from tether_api.locations import CodeLocationSpec
from tether_api.logs import LogSettings, effective
from tether_api.run_worker_api import RunEvent
from tether_controlplane.tables import CodeLocationRow, DeploymentRow, RunRow

# What replaces a failure's text that reached us unredacted while redact_errors is on.
WITHHELD = (
    "error text withheld by the control plane (redact_errors is on, but the run worker sent "
    "it unredacted: upgrade the worker's image or environment to this Tether version)"
)


def deployment_settings(dep: DeploymentRow) -> LogSettings:
    return LogSettings.model_validate(dep.log_settings) if dep.log_settings else LogSettings()


def location_settings(dep: DeploymentRow, row: CodeLocationRow | None) -> LogSettings:
    """The location's own settings, else its deployment's."""
    own = CodeLocationSpec.model_validate(row.spec).logs if row is not None else None
    return effective(deployment_settings(dep), own)


def location_settings_by_name(session: Session, dep: DeploymentRow, name: str) -> LogSettings:
    row = session.scalar(
        select(CodeLocationRow).where(
            CodeLocationRow.deployment_id == dep.id, CodeLocationRow.name == name
        )
    )
    return location_settings(dep, row)


def run_settings(session: Session, dep: DeploymentRow, run: RunRow) -> LogSettings:
    """What the run was launched with; before its launch (or for a run launched before the
    settings existed), what its location would give it now."""
    if run.log_settings:
        return LogSettings.model_validate(run.log_settings)
    return location_settings_by_name(session, dep, run.code_location)


def record_launch(session: Session, dep: DeploymentRow, run: RunRow) -> LogSettings:
    """Fix the run's settings as its worker is launched with them: a later change of the
    deployment's settings applies to later launches, never halfway through a run."""
    settings = location_settings_by_name(session, dep, run.code_location)
    run.log_settings = settings.model_dump(mode="json")
    return settings


def enforce_events(settings: LogSettings, events: list[RunEvent]) -> list[RunEvent]:
    """The events the control plane may store: no LOG event unless everything is forwarded,
    and no failure text when errors are redacted but this one was not."""
    kept = []
    for event in events:
        if event.type == EventType.LOG and not settings.forwards_text:
            continue
        if settings.redact_errors and _unredacted_failure(event):
            event = event.model_copy(
                update={
                    "message": f"{_subject(event)}: {WITHHELD}",
                    "data": {"redacted": True},
                }
            )
        elif settings.redact_errors and _failure(event) and "error_id" in event.data:
            # Redacted by the worker: keep its ID and class, and nothing else it may have
            # left beside them.
            data = {k: v for k, v in event.data.items() if k not in ERROR_TEXT_KEYS}
            message = event.message
            if "(error ID err-" not in message:
                message = f"{_subject(event)}: {WITHHELD}"
            event = event.model_copy(update={"message": message, "data": data})
        kept.append(event)
    return kept


def enforce_tail(settings: LogSettings, tail: list[str]) -> list[str]:
    """An agent's log tail is log text: stored only when everything is forwarded."""
    return tail if settings.forwards_text else []


LOAD_ERROR_PREFIX = "could not load the definitions:"
WITHHELD_FROM_AGENT = (
    "error text withheld by the control plane (redact_errors is on, but the agent sent it "
    "unredacted: upgrade the agent to this Tether version)"
)


def enforce_location_message(settings: LogSettings, message: str | None) -> str | None:
    """A code location's load error, as an agent reports it ('could not load the
    definitions: ...'): withheld when errors are redacted and an older agent did not."""
    if (
        message
        and settings.redact_errors
        and message.startswith(LOAD_ERROR_PREFIX)
        and "(error ID err-" not in message
    ):
        return f"{LOAD_ERROR_PREFIX} {WITHHELD_FROM_AGENT}"
    return message


# What a failure event's data may hold of the error's text.
ERROR_TEXT_KEYS = ("error", "traceback", "errors")


def _failure(event: RunEvent) -> bool:
    return event.type in (EventType.STEP_FAILURE, EventType.RUN_FAILURE)


def _unredacted_failure(event: RunEvent) -> bool:
    if not _failure(event):
        return False
    data: dict[str, Any] = event.data
    return ("traceback" in data or "error" in data) and "error_id" not in data


def _subject(event: RunEvent) -> str:
    return f"step {event.step!r} failed" if event.step else "the run failed"
