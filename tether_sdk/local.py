"""Running a job in the current process, without a control plane: for tests and notebooks."""

import json
import uuid
from dataclasses import dataclass
from typing import Any

from tether_api.enums import CodeLocationKind, EventType
from tether_api.run_worker_api import RunEvent
from tether_api.runtags import ASSET_SELECTION_TAG, partition_tags
from tether_sdk.config import describe_errors, validate_config
from tether_sdk.definitions import Job
from tether_sdk.run_target import resolve
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
    tags: dict[str, str] | None = None,
    partition: str | None = None,
    partition_range: tuple[str, str] | None = None,
    assets: list[str] | None = None,
) -> ExecutionResult:
    """Run ``job`` here and now, exactly as a run worker would, recording events in memory.
    ``partition`` or ``partition_range`` (first, last): the partitions it targets;
    ``assets``: only these assets' steps run; ``tags``: the run's tags (which can say all of
    that too, as a launched run's do).

    Raises ValueError when ``run_config`` does not fit the job's config model, or the tags
    the job (a partitioned job's run names a partition).
    """
    config, errors = validate_config(job.config, run_config or {})
    if errors:
        raise ValueError(describe_errors(job.name, errors))
    tags = dict(tags or {})
    tags.update(partition_tags(CodeLocationKind.TETHER, partition, partition_range))
    if assets is not None:
        tags[ASSET_SELECTION_TAG] = json.dumps(list(assets))
    target = resolve(job, tags)
    events = MemoryEvents()
    report = execute(
        job,
        config,
        events,
        run_id=run_id or f"local-{uuid.uuid4().hex[:12]}",
        capture=OutputCapture(events) if capture_output else None,
        target=target,
    )
    return ExecutionResult(report=report, events=events.run_events())
