"""A code location's code, loaded: what the code server serves and a run worker runs,
whatever the code is written with.

``LocationTarget`` says where the code is (a module or a file, a working directory, an
attribute) and what it is written with (``CodeLocationKind``); ``load_location`` imports it
and returns a ``LoadedLocation`` or the ``LoadError`` to report. Two kinds implement the
protocol: ``TetherLocation`` here (Tether's SDK) and ``tether_sdk.dagster.location``'s
``DagsterLocation``, imported only for a Dagster location (it imports ``dagster``).
"""

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from tether_api.codeserver import ConfigError, LoadError, ValidateRequest, ValidateResponse
from tether_api.enums import CodeLocationKind, EventType
from tether_api.snapshot import DefinitionsSnapshot
from tether_api.ticks import TickRequest, TickResponse
from tether_api.user_api import Run
from tether_sdk.config import describe_errors, validate_config
from tether_sdk.definitions import Definitions
from tether_sdk.loader import load_definitions
from tether_sdk.run_target import RunTargetError, resolve
from tether_sdk.run_worker.capture import OutputCapture
from tether_sdk.run_worker.events import EventEmitter
from tether_sdk.run_worker.executor import CancelState, Outcome, execute
from tether_sdk.ticks import evaluate


@dataclass(frozen=True)
class LocationTarget:
    """Where a code location's code is, and what it is written with."""

    module: str | None = None
    python_file: str | None = None
    working_directory: str | None = None
    attribute: str | None = None
    kind: CodeLocationKind = CodeLocationKind.TETHER

    def describe(self) -> str:
        where = f"module {self.module}" if self.module else f"file {self.python_file}"
        if not self.module and not self.python_file:
            where = f"the project in {self.working_directory or os.getcwd()}"
        return f"{where} ({self.kind.value})"


@dataclass
class RunContext:
    """What a run worker hands a location to execute one run."""

    run: Run
    emitter: EventEmitter
    cancel: CancelState
    capture: OutputCapture | None = None
    start_data: dict[str, Any] = field(default_factory=dict)


class LoadedLocation(Protocol):
    """A code location's loaded code."""

    @property
    def kind(self) -> CodeLocationKind: ...

    def snapshot(self) -> DefinitionsSnapshot:
        """What the code declares, for the control plane. May raise (a user model without a
        JSON schema): the code server then serves it as a load error."""
        ...

    def validate(self, request: ValidateRequest) -> ValidateResponse:
        """Whether a run of ``request.job`` with ``request.run_config`` would start."""
        ...

    def evaluate_tick(self, request: TickRequest) -> TickResponse:
        """A sensor's or schedule's answer; a user error is in the answer, never raised."""
        ...

    def execute(self, context: RunContext) -> Outcome:
        """Run ``context.run`` here, emitting its events up to and including the final one
        (RUN_SUCCESS, RUN_FAILURE or RUN_CANCELED), also when the job or config is refused."""
        ...

    def warm_up(self) -> None:
        """Pay once, in a process that run workers are forked from (or that waits for its
        run), what every run would otherwise pay at its first use: the executor's own lazy
        imports and caches. Runs none of the user's code and leaves no thread running. May
        raise: the caller logs it and serves runs anyway."""
        ...


class TetherLocation:
    """A location written with Tether's SDK: its ``Definitions``."""

    kind = CodeLocationKind.TETHER

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions

    def snapshot(self) -> DefinitionsSnapshot:
        return self.definitions.snapshot()

    def validate(self, request: ValidateRequest) -> ValidateResponse:
        job = self.definitions.get_job(request.job)
        if job is None:
            known = ", ".join(sorted(self.definitions.jobs)) or "none"
            return ValidateResponse(
                valid=False, message=f"unknown job {request.job!r}; known jobs: {known}"
            )
        _, errors = validate_config(job.config, request.run_config)
        if errors:
            return ValidateResponse(
                valid=False, message=describe_errors(job.name, errors), errors=errors
            )
        try:
            target = resolve(job, request.tags)
        except RunTargetError as exc:
            return ValidateResponse(
                valid=False,
                message=str(exc),
                errors=[ConfigError(field=f"tags.{exc.tag}", message=str(exc))],
            )
        return ValidateResponse(valid=True, steps=target.step_names)

    def evaluate_tick(self, request: TickRequest) -> TickResponse:
        return evaluate(self.definitions, request)

    def execute(self, context: RunContext) -> Outcome:
        run, emitter = context.run, context.emitter
        job = self.definitions.get_job(run.job)
        if job is None:
            known = ", ".join(self.definitions.jobs) or "none"
            emitter.emit(
                EventType.RUN_FAILURE,
                level="ERROR",
                message=f"job {run.job!r} is not defined in this code location (jobs: {known})",
            )
            return Outcome.FAILURE
        config, errors = validate_config(job.config, run.run_config)
        if errors:
            emitter.emit(
                EventType.RUN_FAILURE,
                level="ERROR",
                message=describe_errors(job.name, errors),
                data={"errors": [e.model_dump() for e in errors]},
            )
            return Outcome.FAILURE
        try:
            target = resolve(job, run.tags)
        except RunTargetError as exc:
            emitter.emit(
                EventType.RUN_FAILURE,
                level="ERROR",
                message=str(exc),
                data={"errors": [{"field": f"tags.{exc.tag}", "message": str(exc)}]},
            )
            return Outcome.FAILURE
        report = execute(
            job,
            config,
            emitter,
            run_id=run.id,
            cancel=context.cancel,
            capture=context.capture,
            start_data=context.start_data,
            target=target,
        )
        return report.outcome

    def warm_up(self) -> None:
        # Tether's executor is imported with the location: nothing is left to first use.
        return None


def load_location(target: LocationTarget) -> LoadedLocation | LoadError:
    """Import the target's code and return it loaded, or why it failed (never raises for
    the user's code: a code server reports the error, a run worker fails the run with it)."""
    if target.kind == CodeLocationKind.DAGSTER:
        try:
            from tether_sdk.dagster.location import load_dagster_location
        except ImportError as exc:
            message = (
                f"this is a Dagster code location, and {exc.name or 'dagster'} cannot be "
                "imported here: install 'tether-sdk[dagster]' (or 'tether[dagster]') in the "
                "location's image or environment"
            )
            return LoadError(message=message, traceback=message + "\n")
        return load_dagster_location(target)
    loaded = load_definitions(
        module=target.module,
        python_file=target.python_file,
        working_directory=target.working_directory,
        attribute=target.attribute,
    )
    return loaded if isinstance(loaded, LoadError) else TetherLocation(loaded)
