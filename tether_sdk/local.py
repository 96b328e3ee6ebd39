"""Running a job in the current process, without a control plane: for tests and notebooks."""

import uuid
from dataclasses import dataclass
from typing import Any

from tether_api.enums import EventType
from tether_api.run_worker_api import RunEvent
from tether_sdk.config import describe_errors, validate_config
from tether_sdk.definitions import Job
from tether_sdk.run_worker.capture import OutputCapture
from tether_sdk.run_worker.events import MemoryEvents
from tether_sdk.run_worker.executor import ExecutionReport, Outcome, execute


@dataclass
class ExecutionResult:
    """What ``execute_job`` did: the outcome, each step's return value, and the events."""

    report: ExecutionReport
    events: list[RunEvent]

    @property
    def success(self) -> bool:
        return self.report.outcome == Outcome.SUCCESS

    @property
    def outputs(self) -> dict[str, Any]:
        return self.report.outputs

    def events_of(self, type: EventType, step: str | None = None) -> list[RunEvent]:
        return [e for e in self.events if e.type == type and (step is None or e.step == step)]


def execute_job(
    job: Job,
    run_config: dict[str, Any] | None = None,
    *,
    run_id: str | None = None,
    capture_output: bool = True,
) -> ExecutionResult:
    """Run ``job`` here and now, exactly as a run worker would, recording events in memory.

    Raises ValueError when ``run_config`` does not fit the job's config model.
    """
    config, errors = validate_config(job.config, run_config or {})
    if errors:
        raise ValueError(describe_errors(job.name, errors))
    events = MemoryEvents()
    report = execute(
        job,
        config,
        events,
        run_id=run_id or f"local-{uuid.uuid4().hex[:12]}",
        capture=OutputCapture(events) if capture_output else None,
    )
    return ExecutionResult(report=report, events=events.run_events())
