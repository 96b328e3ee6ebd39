"""Declaring steps, assets, jobs and schedules, and collecting them in ``Definitions``.

Everything is checked when it is declared (that is, when the user's module is imported), so
a mistake surfaces as a load error with a message that names the definition and the fix,
instead of as a failed run hours later.
"""

import inspect
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, overload

from pydantic import BaseModel

from tether_api.enums import AutomationStatus, MissedTicks, RetryOn
from tether_api.names import check_name
from tether_api.snapshot import (
    AssetSnapshot,
    DefinitionsSnapshot,
    JobSnapshot,
    ScheduleSnapshot,
    StepSnapshot,
)
from tether_sdk.config import describe_errors, validate_config
from tether_sdk.cron import cron_error
from tether_sdk.errors import DefinitionError
from tether_sdk.graph import find_cycle, topological_order
from tether_sdk.partitions import PartitionsDefinition, TimeWindowPartitions
from tether_sdk.sensors import Sensor
from tether_sdk.unknown_keys import config_json_schema

# Parameter names with a special meaning; every other parameter names an upstream step.
CONTEXT_PARAMS = ("ctx", "context")
CONFIG_PARAM = "config"
DEFAULT_GROUP = "default"


RESERVED_NAMES = frozenset({*CONTEXT_PARAMS, CONFIG_PARAM})


class Step:
    """A function that is one node of a job's graph. Made by ``@step`` or ``@asset``.

    Calling a Step calls the function, so steps can be unit-tested directly.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        asset: bool = False,
        group: str | None = None,
        partitions: PartitionsDefinition | None = None,
        deps: Sequence["str | Step"] | None = None,
    ) -> None:
        kind = "asset" if asset else "step"
        if not callable(fn):
            raise DefinitionError(f"@{kind} must decorate a function, got {fn!r}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise DefinitionError(
                f"{kind} {getattr(fn, '__name__', fn)!r} is a generator (it uses yield): a step "
                "returns its output; collect the values in a list and return that"
            )
        self.fn = fn
        self.name = _name(name or getattr(fn, "__name__", ""), f"{kind} name")
        if self.name in RESERVED_NAMES:
            raise DefinitionError(
                f"a {kind} cannot be named {self.name!r}: that parameter name is reserved for "
                f"the {'run config' if self.name == CONFIG_PARAM else 'step context'}; "
                f"pass name=... to @{kind}"
            )
        self.description = description or inspect.getdoc(fn)
        self.asset_key: str | None = self.name if asset else None
        self.group = _name(group, "asset group") if group else DEFAULT_GROUP
        if group and not asset:
            raise DefinitionError(f"step {self.name!r}: group= is only for @asset")
        if partitions is not None and not isinstance(partitions, PartitionsDefinition):
            raise DefinitionError(
                f"{kind} {self.name!r}: partitions= takes a StaticPartitions, DailyPartitions, "
                f"... or MultiPartitions, got {partitions!r}"
            )
        self.partitions = partitions
        self.context_param: str | None = None
        self.takes_config = False
        params: list[str] = []
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise DefinitionError(
                    f"{kind} {self.name!r}: parameter {param.name!r} must be a plain named "
                    "parameter (no *args, **kwargs or positional-only '/'): Tether passes "
                    "ctx, config and upstream outputs by name"
                )
            if param.name in CONTEXT_PARAMS:
                if self.context_param:
                    raise DefinitionError(
                        f"{kind} {self.name!r} has both 'ctx' and 'context' parameters: keep one"
                    )
                self.context_param = param.name
            elif param.name == CONFIG_PARAM:
                self.takes_config = True
            else:
                params.append(param.name)
        # Upstream steps whose return values it takes (its parameters).
        self.deps: tuple[str, ...] = tuple(params)
        # Upstream assets it depends on without taking their value (deps=[...]): lineage, and
        # order when they are in the same job.
        self.asset_deps: tuple[str, ...] = _asset_deps(deps, self.name, kind, self.deps)

    @property
    def is_asset(self) -> bool:
        return self.asset_key is not None

    @property
    def kind(self) -> str:
        return "asset" if self.is_asset else "step"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} deps={list(self.deps)}>"


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(*, name: str | None = None, description: str | None = None) -> Callable[..., Step]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Step | Callable[..., Step]:
    """Declare a step: ``@step`` or ``@step(name=..., description=...)``.

    Parameters: ``ctx``/``context`` gets a StepContext, ``config`` gets the job's validated
    run config, and every other parameter names an upstream step whose return value it gets.
    """
    if fn is not None:
        return Step(fn, name=name, description=description)
    return lambda f: Step(f, name=name, description=description)


@overload
def asset(fn: Callable[..., Any], /) -> Step: ...
@overload
def asset(
    *,
    name: str | None = None,
    description: str | None = None,
    group: str | None = None,
    partitions: PartitionsDefinition | None = None,
    deps: Sequence["str | Step"] | None = None,
) -> Callable[..., Step]: ...
def asset(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    group: str | None = None,
    partitions: PartitionsDefinition | None = None,
    deps: Sequence["str | Step"] | None = None,
) -> Step | Callable[..., Step]:
    """Declare an asset: a step whose result is a named data asset (its key is its name).

    Dependencies are parameters named after upstream assets, exactly as for steps; ``deps``
    lists upstream assets it depends on without taking their value (it reads what they
    wrote): they come first in a job that holds them, and show in the lineage. ``partitions``:
    how it is partitioned (a run materializes one key or a range of them).
    """

    def make(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name=name,
            description=description,
            asset=True,
            group=group,
            partitions=partitions,
            deps=deps,
        )

    return make(fn) if fn is not None else make


MAX_RETRIES = 100


class Job:
    """A named graph of steps, with an optional pydantic model for its run config."""

    def __init__(
        self,
        name: str,
        steps: Sequence[Step],
        *,
        config: type[BaseModel] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        max_retries: int = 0,
        retry_on: str = RetryOn.ANY,
        partitions: PartitionsDefinition | None = None,
    ) -> None:
        self.name = _name(name, "job name")
        self.description = description
        if (
            not isinstance(max_retries, int)
            or isinstance(max_retries, bool)
            or not 0 <= max_retries <= MAX_RETRIES
        ):
            raise DefinitionError(f"job {name!r}: max_retries must be an int from 0 to 100")
        try:
            self.retry_on = RetryOn(retry_on)
        except ValueError:
            raise DefinitionError(
                f"job {name!r}: retry_on must be 'any' (a failed step or the worker dying) "
                f"or 'worker_died', not {retry_on!r}"
            ) from None
        self.max_retries = max_retries
        self.tags = _tags(tags, f"job {name!r}")
        if config is not None and not (isinstance(config, type) and issubclass(config, BaseModel)):
            raise DefinitionError(
                f"job {name!r}: config must be a pydantic BaseModel subclass, got {config!r}"
            )
        self.config = config
        declared = _unique_steps(steps, self.name)
        by_name = {s.name: s for s in declared}
        for s in declared:
            for dep in s.deps:
                if dep not in by_name:
                    raise DefinitionError(
                        f"{s.kind} {s.name!r} in job {name!r} has a parameter {dep!r} that "
                        f"names no step of the job (steps: {', '.join(by_name)}). Add the "
                        f"{dep!r} step to the job, or rename the parameter: only 'ctx', "
                        "'context' and 'config' are special, every other parameter is an "
                        "upstream step"
                    )
            if s.takes_config and config is None:
                raise DefinitionError(
                    f"{s.kind} {s.name!r} takes a 'config' parameter but job {name!r} has no "
                    "config model: pass config=YourModel to the job"
                )
        self.partitions = _job_partitions(self.name, declared, partitions)
        # deps=[...] upstream assets of the job order it too; others are lineage only.
        deps = {s.name: s.deps + tuple(d for d in s.asset_deps if d in by_name) for s in declared}
        order = topological_order(list(by_name), deps)
        if order is None:
            cycle = " -> ".join(find_cycle(list(by_name), deps))
            raise DefinitionError(f"job {name!r} has a dependency cycle: {cycle}")
        # Kept in execution order: that is the order the worker runs and the UI shows.
        self.steps: tuple[Step, ...] = tuple(by_name[n] for n in order)

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def snapshot(self) -> JobSnapshot:
        return JobSnapshot(
            name=self.name,
            description=self.description,
            steps=[
                StepSnapshot(
                    name=s.name,
                    deps=list(s.deps) + [d for d in s.asset_deps if d in self.step_names],
                    description=s.description,
                    asset_key=s.asset_key,
                    asset_keys=[s.asset_key] if s.asset_key else [],
                )
                for s in self.steps
            ],
            config_schema=config_json_schema(self.config) if self.config else None,
            tags=dict(self.tags),
            max_retries=self.max_retries,
            retry_on=self.retry_on,
            partitions=self.partitions.snapshot() if self.partitions else None,
        )

    def upstream(self, s: Step) -> tuple[str, ...]:
        """The steps of this job that ``s`` runs after: those whose values it takes, and its
        deps=[...] assets the job holds."""
        return s.deps + tuple(d for d in s.asset_deps if any(d == t.name for t in self.steps))

    def __repr__(self) -> str:
        return f"<job {self.name!r} steps={self.step_names}>"


def job(
    name: str,
    *,
    steps: Sequence[Step],
    config: type[BaseModel] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    max_retries: int = 0,
    retry_on: str = RetryOn.ANY,
    partitions: PartitionsDefinition | None = None,
) -> Job:
    """Declare a job from steps (in any order: they run in dependency order). A failed run
    is tried again up to ``max_retries`` times, as a new run linked to it; ``retry_on``:
    ``"any"`` failure, or only ``"worker_died"`` (killed, lost, out of memory).

    ``config`` is the pydantic model of the run config. A key it (or a model nested in it)
    does not define is refused, unless that model takes extra keys on purpose:
    ``model_config = ConfigDict(extra="allow")`` keeps them (``config.model_extra``),
    ``extra="ignore"`` drops them.

    ``partitions``: each run targets one key or a range of them (tags ``tether/partition``,
    or ``tether/partition_range_start``/``_end``); the steps see it in their context. A job
    of partitioned assets takes theirs."""
    return Job(
        name,
        steps,
        config=config,
        description=description,
        tags=tags,
        max_retries=max_retries,
        retry_on=retry_on,
        partitions=partitions,
    )


def asset_job(
    name: str,
    *,
    assets: Sequence[Step],
    config: type[BaseModel] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    max_retries: int = 0,
    retry_on: str = RetryOn.ANY,
) -> Job:
    """Declare a job that materializes ``assets`` (each asset whose value another takes must
    be included; ``deps=`` ones need not). Partitioned assets make it partitioned: all of
    them must share one partitions definition."""
    built = Job(
        name,
        assets,
        config=config,
        description=description,
        tags=tags,
        max_retries=max_retries,
        retry_on=retry_on,
    )
    for a in built.steps:
        if not a.is_asset:
            raise DefinitionError(
                f"asset_job {name!r}: {a.name!r} is a @step, not an @asset; use job() for steps"
            )
    return built


class Schedule:
    """Launch ``job`` with ``run_config`` on a cron schedule (evaluated by the control plane)."""

    def __init__(
        self,
        name: str,
        *,
        cron: str | None = None,
        job: Job,
        run_config: "Mapping[str, Any] | Callable[[Any], Any] | None" = None,
        timezone: str | None = None,
        tags: Mapping[str, str] | None = None,
        default_status: str = AutomationStatus.STOPPED,
        missed_ticks: str = MissedTicks.LATEST,
        timeout_seconds: float = 60,
    ) -> None:
        self.name = _name(name, "schedule name")
        try:
            self.default_status = AutomationStatus(default_status)
            self.missed_ticks = MissedTicks(missed_ticks)
        except ValueError as exc:
            raise DefinitionError(
                f"schedule {name!r}: {exc}; default_status is RUNNING or STOPPED, "
                "missed_ticks is 'latest', 'all' or 'skip'"
            ) from None
        if not isinstance(job, Job):
            raise DefinitionError(
                f"schedule {name!r}: job= must be a Job (from job() or asset_job()), got {job!r}"
            )
        windows = job.partitions if isinstance(job.partitions, TimeWindowPartitions) else None
        if cron is None and windows is not None:
            # A partitioned job's schedule ticks when a window ends, in the windows' zone.
            cron, timezone = windows.cron, timezone or windows.timezone
        if cron is None:
            raise DefinitionError(
                f"schedule {name!r}: cron= is required (e.g. '0 3 * * *'); it may be left out "
                "only for a job partitioned by time windows, whose schedule ticks as they end"
            )
        timezone = "UTC" if timezone is None else timezone
        if not isinstance(cron, str) or (problem := cron_error(cron)):
            raise DefinitionError(
                f"schedule {name!r}: {problem if isinstance(cron, str) else 'cron must be a str'}"
            )
        if not timezone or not isinstance(timezone, str):
            raise DefinitionError(f"schedule {name!r}: timezone must be a name like 'UTC'")
        if not _known_timezone(timezone):
            raise DefinitionError(
                f"schedule {name!r}: unknown timezone {timezone!r}; use an IANA name such as "
                "'UTC' or 'Europe/Paris'"
            )
        self.cron = " ".join(cron.split())
        self.job = job
        self.timezone = timezone
        self.tags = _tags(tags, f"schedule {name!r}")
        if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int | float):
            raise DefinitionError(f"schedule {name!r}: timeout_seconds must be a number")
        if timeout_seconds <= 0:
            raise DefinitionError(f"schedule {name!r}: timeout_seconds must be positive")
        self.timeout_seconds = float(timeout_seconds)
        # A function of the tick (a ScheduleContext) returning the config: the code server
        # evaluates it at each tick, so its result is checked then.
        self.config_fn: Callable[[Any], Any] | None = None
        self.run_config: dict[str, Any] = {}
        if callable(run_config):
            self.config_fn = run_config
            return
        if job.partitions is not None and windows is None:
            raise DefinitionError(
                f"schedule {name!r}: job {job.name!r} is partitioned by {job.partitions!r}, "
                "and a tick cannot tell which key to run: pass run_config= a function of the "
                "ScheduleContext that returns RunRequest(partition_key=..., run_config=...)"
            )
        if run_config is not None and not isinstance(run_config, Mapping):
            raise DefinitionError(
                f"schedule {name!r}: run_config is a dict or a function of the tick that "
                f"returns one, got {run_config!r}"
            )
        self.run_config = dict(run_config or {})
        # A schedule whose config the job rejects would fail on every tick: say so now.
        _, errors = validate_config(job.config, self.run_config)
        if errors:
            raise DefinitionError(f"schedule {name!r}: {describe_errors(job.name, errors)}")

    def snapshot(self) -> ScheduleSnapshot:
        return ScheduleSnapshot(
            name=self.name,
            cron=self.cron,
            job=self.job.name,
            timezone=self.timezone,
            run_config=self.run_config,
            tags=dict(self.tags),
            default_status=self.default_status,
            missed_ticks=self.missed_ticks,
            config_from_code=self.config_fn is not None,
            timeout_seconds=self.timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"<schedule {self.name!r} {self.cron!r} job={self.job.name!r}>"


def schedule(
    name: str,
    *,
    cron: str | None = None,
    job: Job,
    run_config: "Mapping[str, Any] | Callable[[Any], Any] | None" = None,
    timezone: str | None = None,
    tags: Mapping[str, str] | None = None,
    default_status: str = AutomationStatus.STOPPED,
    missed_ticks: str = MissedTicks.LATEST,
    timeout_seconds: float = 60,
) -> Schedule:
    """Declare a schedule: ``cron`` is 5 fields (minute hour day-of-month month day-of-week),
    in ``timezone``. It is STOPPED until turned on (``tether schedules on``), unless
    ``default_status="RUNNING"``. ``missed_ticks``: what happens to the ticks that passed while
    the scheduler was down: ``"latest"`` runs the most recent one, ``"all"`` each of them,
    ``"skip"`` none. ``run_config`` may be a function of a ``ScheduleContext`` (its
    ``scheduled_time``) returning the config, a ``RunRequest`` or a ``SkipReason``: the code
    server then evaluates it at each tick, for at most ``timeout_seconds``.

    A job partitioned by time windows: each tick runs the partition of the window that just
    ended (``end_offset`` moves it); ``cron`` and ``timezone`` default to the windows' (the
    daily schedule of a daily job runs yesterday's partition just after midnight). Any other
    partitioned job needs a ``run_config`` function returning ``RunRequest(partition_key=...)``;
    its ``ScheduleContext.partition_key`` is the tick's window, for time windows."""
    return Schedule(
        name,
        cron=cron,
        job=job,
        run_config=run_config,
        timezone=timezone,
        tags=tags,
        default_status=default_status,
        missed_ticks=missed_ticks,
        timeout_seconds=timeout_seconds,
    )


class Definitions:
    """Everything a code location declares. The loader looks for a module-level instance."""

    def __init__(
        self,
        *,
        jobs: Iterable[Job] = (),
        assets: Iterable[Step] = (),
        schedules: Iterable[Schedule] = (),
        sensors: Iterable[Sensor] = (),
    ) -> None:
        jobs = _as_list(jobs, "jobs")
        assets = _as_list(assets, "assets")
        schedules = _as_list(schedules, "schedules")
        sensors = _as_list(sensors, "sensors")
        self.jobs: dict[str, Job] = {}
        for j in jobs:
            if not isinstance(j, Job):
                raise DefinitionError(f"Definitions(jobs=...): {j!r} is not a Job")
            if j.name in self.jobs and self.jobs[j.name] is not j:
                raise DefinitionError(f"two jobs are named {j.name!r}: rename one")
            self.jobs[j.name] = j

        # Assets of asset jobs count even when not listed: they are declared all the same.
        all_assets = list(assets) + [s for j in self.jobs.values() for s in j.steps if s.is_asset]
        self.assets: dict[str, Step] = {}
        for a in all_assets:
            if not isinstance(a, Step) or a.asset_key is None:
                raise DefinitionError(f"Definitions(assets=...): {a!r} is not an @asset")
            if a.asset_key in self.assets and self.assets[a.asset_key] is not a:
                raise DefinitionError(f"two assets have the key {a.asset_key!r}: rename one")
            self.assets[a.asset_key] = a
        for a in self.assets.values():
            for dep in a.deps:
                if dep not in self.assets:
                    raise DefinitionError(
                        f"asset {a.name!r} depends on {dep!r}, which is not an asset of these "
                        f"Definitions: declare {dep!r} with @asset and add it to assets=[...]"
                    )

        self.schedules: dict[str, Schedule] = {}
        for s in schedules:
            if not isinstance(s, Schedule):
                raise DefinitionError(f"Definitions(schedules=...): {s!r} is not a Schedule")
            if s.name in self.schedules:
                raise DefinitionError(f"two schedules are named {s.name!r}: rename one")
            if self.jobs.get(s.job.name) is not s.job:
                raise DefinitionError(
                    f"schedule {s.name!r} targets job {s.job.name!r}, which is not in these "
                    "Definitions: add it to Definitions(jobs=[...])"
                )
            self.schedules[s.name] = s

        self.sensors: dict[str, Sensor] = {}
        for sn in sensors:
            if not isinstance(sn, Sensor):
                hint = " (did you forget @sensor?)" if callable(sn) else ""
                raise DefinitionError(f"Definitions(sensors=...): {sn!r} is not a sensor{hint}")
            if sn.name in self.sensors:
                raise DefinitionError(f"two sensors are named {sn.name!r}: rename one")
            if sn.job is not None and self.jobs.get(sn.job.name) is not sn.job:
                raise DefinitionError(
                    f"sensor {sn.name!r} targets job {sn.job.name!r}, which is not in these "
                    "Definitions: add it to Definitions(jobs=[...])"
                )
            self.sensors[sn.name] = sn

    def get_job(self, name: str) -> Job | None:
        return self.jobs.get(name)

    def snapshot(self) -> DefinitionsSnapshot:
        return DefinitionsSnapshot(
            jobs=[j.snapshot() for j in self.jobs.values()],
            assets=[
                AssetSnapshot(
                    key=a.name,
                    deps=list(a.deps) + list(a.asset_deps),
                    description=a.description,
                    group=a.group,
                    partitions=a.partitions.snapshot() if a.partitions else None,
                )
                for a in self.assets.values()
            ],
            schedules=[s.snapshot() for s in self.schedules.values()],
            sensors=[s.snapshot() for s in self.sensors.values()],
        )

    def __repr__(self) -> str:
        return (
            f"<Definitions jobs={list(self.jobs)} assets={list(self.assets)} "
            f"schedules={list(self.schedules)} sensors={list(self.sensors)}>"
        )


def _asset_deps(
    deps: "Sequence[str | Step] | None", name: str, kind: str, value_deps: tuple[str, ...]
) -> tuple[str, ...]:
    if deps is None:
        return ()
    if kind != "asset":
        raise DefinitionError(
            f"step {name!r}: deps= is only for @asset; a step takes its upstream steps as "
            "parameters"
        )
    if isinstance(deps, str | Step) or not isinstance(deps, Sequence):
        raise DefinitionError(
            f"asset {name!r}: deps= takes a list of upstream assets (keys or @asset "
            f"functions), e.g. deps=['raw_orders']; got {deps!r}"
        )
    found: list[str] = []
    for d in deps:
        key = d.asset_key if isinstance(d, Step) else d
        if not isinstance(key, str) or not key:
            raise DefinitionError(
                f"asset {name!r}: deps= lists {d!r}, which is neither an asset key nor an @asset"
            )
        if key == name:
            raise DefinitionError(f"asset {name!r}: deps= lists the asset itself")
        if key in value_deps:
            raise DefinitionError(
                f"asset {name!r}: {key!r} is both a parameter (its value is passed) and in "
                "deps=: keep one"
            )
        if key not in found:
            found.append(key)
    return tuple(found)


def _job_partitions(
    job_name: str, steps: Sequence[Step], declared: PartitionsDefinition | None
) -> PartitionsDefinition | None:
    """A job's partitions: those it declares, or those of its partitioned assets, which must
    all be equal (a run targets one key of one definition)."""
    if declared is not None and not isinstance(declared, PartitionsDefinition):
        raise DefinitionError(
            f"job {job_name!r}: partitions= takes a StaticPartitions, DailyPartitions, ... or "
            f"MultiPartitions, got {declared!r}"
        )
    found, source = declared, f"job {job_name!r}"
    for s in steps:
        if s.partitions is None:
            continue
        if found is None:
            found, source = s.partitions, f"asset {s.name!r}"
        elif s.partitions != found:
            raise DefinitionError(
                f"job {job_name!r}: {source} is partitioned by {found!r} but asset {s.name!r} "
                f"by {s.partitions!r}: a run targets keys of one partitions definition, so "
                "give them the same one, or put them in separate jobs"
            )
    return found


def _name(value: str | None, what: str) -> str:
    try:
        return check_name(value or "", what)
    except ValueError as exc:
        raise DefinitionError(str(exc)) from None


def _tags(tags: Mapping[str, str] | None, owner: str) -> dict[str, str]:
    result = dict(tags or {})
    for key, value in result.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise DefinitionError(f"{owner}: tags must map str to str, got {key!r}: {value!r}")
    return result


def _unique_steps(steps: Sequence[Step], job_name: str) -> list[Step]:
    if isinstance(steps, Step) or not steps:
        raise DefinitionError(f"job {job_name!r} needs a non-empty list of steps")
    seen: dict[str, Step] = {}
    for s in steps:
        if not isinstance(s, Step):
            hint = " (did you forget @step or @asset?)" if callable(s) else ""
            raise DefinitionError(f"job {job_name!r}: {s!r} is not a step{hint}")
        if s.name in seen:
            if seen[s.name] is s:
                raise DefinitionError(f"job {job_name!r} lists {s.kind} {s.name!r} twice")
            raise DefinitionError(
                f"job {job_name!r} has two steps named {s.name!r}: give one a different "
                "name with @step(name=...)"
            )
        seen[s.name] = s
    return list(seen.values())


def _as_list(items: Any, what: str) -> list[Any]:
    """A list from ``items``; one Job/Step/Schedule given without brackets is a clear error."""
    if isinstance(items, Job | Step | Schedule | Sensor):
        raise DefinitionError(f"Definitions({what}=...) takes a list: write {what}=[{items!r}]")
    try:
        return list(items)
    except TypeError:
        raise DefinitionError(f"Definitions({what}=...) takes a list, got {items!r}") from None


def _known_timezone(name: str) -> bool:
    """False only when the time zone database is present and does not know ``name``: slim
    images may lack the database, and a schedule must not fail to load for that."""
    try:
        zoneinfo.ZoneInfo(name)
        return True
    except zoneinfo.ZoneInfoNotFoundError:
        try:
            zoneinfo.ZoneInfo("UTC")
        except zoneinfo.ZoneInfoNotFoundError:
            return True  # no database here: cannot tell
        return False
    except ValueError:
        return False
