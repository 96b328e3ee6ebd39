"""``DagsterLocation``: a Dagster project's repository behind Tether's ``LoadedLocation``."""

import os

import dagster as dg

from tether_api.codeserver import ConfigError, LoadError, ValidateRequest, ValidateResponse
from tether_api.enums import CodeLocationKind
from tether_api.snapshot import DefinitionsSnapshot
from tether_api.ticks import TickRequest, TickResponse
from tether_sdk.dagster import automations, ticks
from tether_sdk.dagster.config import planned_steps
from tether_sdk.dagster.execute import Refusal, execute_run, prepare_run
from tether_sdk.dagster.loader import load_repository
from tether_sdk.dagster.names import DagsterNameError, JobNames
from tether_sdk.dagster.snapshot import snapshot
from tether_sdk.dagster.warmup import warm_up
from tether_sdk.location import LocationTarget, RunContext
from tether_sdk.run_worker.executor import Outcome


class DagsterLocation:
    kind = CodeLocationKind.DAGSTER

    def __init__(self, repo: dg.RepositoryDefinition, target: LocationTarget) -> None:
        self.repo = repo
        self.target = target
        self.names = JobNames(job.name for job in repo.get_all_jobs())

    def snapshot(self) -> DefinitionsSnapshot:
        schedules, schedule_warnings = automations.schedule_snapshots(self.repo, self.names)
        sensors, sensor_warnings = automations.sensor_snapshots(self.repo, self.names)
        return snapshot(
            self.repo, self.names, (schedules, sensors, schedule_warnings + sensor_warnings)
        )

    def validate(self, request: ValidateRequest) -> ValidateResponse:
        name = self.names.dagster(request.job)
        if name is None:
            known = ", ".join(self.names.shown()) or "none"
            return ValidateResponse(
                valid=False, message=f"unknown job {request.job!r}; known jobs: {known}"
            )
        prepared = prepare_run(self.repo.get_job(name), request.run_config, request.tags)
        if isinstance(prepared, Refusal):
            errors = [
                ConfigError(field=p["field"], message=p["message"]) for p in prepared.problems
            ]
            return ValidateResponse(valid=False, message=prepared.message, errors=errors)
        return ValidateResponse(valid=True, steps=planned_steps(prepared.job, prepared.config))

    def evaluate_tick(self, request: TickRequest) -> TickResponse:
        return ticks.evaluate_tick(self.repo, self.names, request)

    def execute(self, context: RunContext) -> Outcome:
        return execute_run(self.repo, self.names, context, self._storage_key())

    def warm_up(self) -> None:
        warm_up()

    def _storage_key(self) -> str:
        t = self.target
        return "|".join(
            str(part or "")
            for part in (t.working_directory or os.getcwd(), t.module, t.python_file, t.attribute)
        )


def load_dagster_location(target: LocationTarget) -> DagsterLocation | LoadError:
    # Dagster's telemetry would print a banner and try to upload: off, as Tether runs it.
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    loaded = load_repository(
        module=target.module,
        python_file=target.python_file,
        working_directory=target.working_directory,
        attribute=target.attribute,
    )
    if isinstance(loaded, LoadError):
        return loaded
    try:
        return DagsterLocation(loaded, target)
    except DagsterNameError as exc:
        return LoadError(message=str(exc), traceback=f"{exc}\n")
