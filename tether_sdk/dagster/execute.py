"""Running a Dagster job in Tether's run worker: Dagster's in-process executor, its events
translated into Tether's as they happen.

``job.execute_in_process`` runs the steps one at a time in this thread, with an ephemeral
instance (``instance.py``) whose storage folder outlives the run
(``TETHER_DAGSTER_STORAGE``: what assets write through the default IO manager is there for
the next run). A listener on the instance
gets each event right after Dagster stores it, in the thread that made it, and emits the
Tether event: the run's events reach the control plane while it runs.

Where Dagster's model and Tether's differ (README, "Dagster code locations"):
- Steps downstream of a failed one get no event in Dagster; Tether's run says what became
  of every planned step, so at the end each step that never started is STEP_SKIPPED with
  ``data.reason`` "upstream failed" (or "run canceled"). Dagster's own STEP_SKIPPED (an
  optional output not produced) stays one, with ``data.reason`` "output not produced".
- A retried step (RetryPolicy, RetryRequested) is one step: STEP_UP_FOR_RETRY, then
  STEP_RESTARTED, then its end.
- A failed step's error is the user's exception (Dagster's wrapper dropped), with its cause
  chain in ``data.causes`` and Dagster's whole text in ``data.traceback``.
- Cancel: Dagster takes over SIGTERM and SIGINT for the run (its handler interrupts user
  code with DagsterExecutionInterruptedError, so resources are torn down). ``CancelWatch``
  sees those signals too (the agent's SIGTERM, or the run worker's own on the control
  plane's cancel), records the cancel and marks the Dagster run CANCELING: the interrupted
  step is STEP_CANCELED and the run RUN_CANCELED.

Dagster internals used: ``DagsterInstance.add_event_listener`` and
``report_run_canceling`` (the translation itself is ``events.py``'s).
"""

import contextlib
import hashlib
import os
import signal
import tempfile
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import dagster as dg

from tether_api.enums import EventType
from tether_api.runtags import PARTITION_TAG, asset_selection
from tether_sdk.dagster.config import planned_steps, validate_run_config
from tether_sdk.dagster.events import EventTranslator
from tether_sdk.dagster.instance import run_instance
from tether_sdk.dagster.names import JobNames
from tether_sdk.location import RunContext
from tether_sdk.run_worker.executor import Outcome

STORAGE_ENV = "TETHER_DAGSTER_STORAGE"


def storage_dir(target_key: str) -> str:
    """The folder Dagster's instance keeps run outputs in (the default IO manager writes
    assets there): the agent's ``TETHER_DAGSTER_STORAGE`` for the location, else one per
    location under the system's temporary folder."""
    configured = os.environ.get(STORAGE_ENV)
    if configured:
        return configured
    digest = hashlib.sha256(target_key.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), "tether-dagster", digest)


def _unwritable(folder: str) -> str | None:
    """Why the run's storage folder cannot be used, or None: said before the run, not as an
    IO manager's failure in the middle of it."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".tether-probe-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as exc:
        return (
            f"the Dagster storage folder {folder} is not writable by uid {os.getuid()} "
            f"({exc.strerror}): make it writable by the image's user, or set "
            f"{STORAGE_ENV} in the location's env to a folder that is"
        )
    return None


def dagster_run_id_of(run_id: str) -> str:
    """Dagster's run ID for a Tether run: the same UUID (Tether's run IDs are UUIDs), or one
    derived from it for any other ID."""
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tether-run:{run_id}"))


def _quiet_console(job: dg.JobDefinition, run_config: dict[str, Any]) -> dict[str, Any]:
    """Dagster's console logger repeats every event on stderr, which the run worker would
    capture again: turned down, unless the run's config sets loggers itself (or the job's
    config is a mapping, whose schema has no place for them)."""
    if "loggers" in run_config or job.config_mapping is not None:
        return run_config
    return {**run_config, "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def execute_run(
    repo: dg.RepositoryDefinition, names: JobNames, context: RunContext, storage_key: str
) -> Outcome:
    """Run ``context.run`` with Dagster's in-process executor; every path ends with the run's
    final Tether event."""
    run, emit = context.run, context.emitter.emit
    dagster_name = names.dagster(run.job)
    if dagster_name is None:
        emit(
            EventType.RUN_FAILURE,
            level="ERROR",
            message=f"job {run.job!r} is not defined in this code location "
            f"(jobs: {', '.join(names.shown()) or 'none'})",
        )
        return Outcome.FAILURE
    prepared = prepare_run(repo.get_job(dagster_name), run.run_config, run.tags)
    if isinstance(prepared, Refusal):
        emit(
            EventType.RUN_FAILURE,
            level="ERROR",
            message=prepared.message,
            data={"errors": prepared.problems} if prepared.problems else None,
        )
        return Outcome.FAILURE
    job, config, partition = prepared.job, prepared.config, prepared.partition
    translator = EventTranslator(
        context,
        run.job,
        planned=lambda: planned_steps(job, config),
        canceled=lambda: context.cancel.requested,
    )
    storage = storage_dir(storage_key)
    unusable = _unwritable(storage)
    if unusable is not None:
        emit(EventType.RUN_FAILURE, level="ERROR", message=unusable)
        return Outcome.FAILURE
    instance = run_instance(storage)
    dagster_run_id = dagster_run_id_of(run.id)
    instance.add_event_listener(dagster_run_id, translator)
    try:
        with CancelWatch(context, instance, dagster_run_id):
            job.execute_in_process(
                run_config=_quiet_console(job, config),
                instance=instance,
                run_id=dagster_run_id,
                raise_on_error=False,
                partition_key=partition,
                tags={k: v for k, v in run.tags.items() if not k.startswith("tether/")},
            )
    finally:
        translator._close_capture()
        with contextlib.suppress(Exception):
            instance.dispose()
    if translator.outcome is None:
        # Dagster ended without a final event (it should not): say so rather than hang.
        emit(
            EventType.RUN_FAILURE, level="ERROR", message="the Dagster run ended without an outcome"
        )
        return Outcome.FAILURE
    return translator.outcome


@dataclass(frozen=True)
class PreparedRun:
    """A run ready for ``execute_in_process``: its job (the selected assets' subset), the
    config it runs with (a partition's when it gives none) and its partition."""

    job: dg.JobDefinition
    config: dict[str, Any]
    partition: str | None


@dataclass(frozen=True)
class Refusal:
    """Why a run cannot start: one line, and each problem as ``{"field", "message"}``."""

    message: str
    problems: list[dict[str, str]]


def prepare_run(
    job: dg.JobDefinition, run_config: dict[str, Any], tags: dict[str, str]
) -> PreparedRun | Refusal:
    """The run of ``job`` its config and tags ask for, or why it cannot start: what the
    code server's /validate answers and the run worker checks before it runs."""
    try:
        selection = asset_selection(tags)
    except ValueError as exc:
        return Refusal(str(exc), [])
    partition = tags.get(PARTITION_TAG)
    problems = check_run(job, run_config, selection, partition)
    if problems:
        details = "; ".join(
            f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in problems
        )
        return Refusal(f"invalid run of job {job.name!r}: {details}", problems)
    if selection:
        job = job.get_subset(
            asset_selection={dg.AssetKey.from_user_string(k) for k in selection},
            asset_check_selection=None,
        )
    return PreparedRun(job, effective_config(job, run_config, partition), partition)


def effective_config(
    job: dg.JobDefinition, run_config: dict[str, Any], partition: str | None
) -> dict[str, Any]:
    """The config a run executes with: a partitioned job's run with no config of its own
    takes its partition's (as Dagster does)."""
    if run_config or partition is None or job.partitioned_config is None:
        return run_config
    return dict(job.partitioned_config.get_run_config_for_partition_key(partition))


def check_run(
    job: dg.JobDefinition,
    run_config: dict[str, Any],
    selection: list[str] | None,
    partition: str | None,
) -> list[dict[str, str]]:
    """The problems of a run before it starts, as ``{"field", "message"}``: its config
    (Dagster's own config system), its asset selection and its partition."""
    problems: list[dict[str, str]] = []
    if selection is not None:
        known = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
        for key in selection:
            if key not in known:
                problems.append(
                    {
                        "field": "tags.tether/asset_selection",
                        "message": f"asset {key!r} is not in job {job.name!r} "
                        f"(its assets: {', '.join(sorted(known)) or 'none'})",
                    }
                )
    if partition is not None:
        definition = job.partitions_def
        if definition is None:
            problems.append(
                {
                    "field": f"tags.{PARTITION_TAG}",
                    "message": f"job {job.name!r} is not partitioned",
                }
            )
        elif not definition.has_partition_key(partition):
            problems.append(
                {
                    "field": f"tags.{PARTITION_TAG}",
                    "message": f"partition {partition!r} does not exist in job {job.name!r}",
                }
            )
    if not problems:
        _, errors = validate_run_config(job, effective_config(job, run_config, partition))
        problems += [{"field": e.field, "message": e.message} for e in errors]
    return problems


class CancelWatch:
    """Dagster takes over SIGTERM and SIGINT while a run executes (its handlers interrupt
    user code with DagsterExecutionInterruptedError, so resources are torn down) and would
    end the run as an unexpected interruption. This sees those signals anyway, through
    Python's wakeup fd, and in a thread of its own hands each to the run worker's handler
    (the cancel is recorded as one, with its reason) and marks the Dagster run CANCELING,
    so Dagster ends it RUN_CANCELED. Start and stop it from the main thread: stopping puts
    the process's SIGTERM and SIGINT handlers back as they were."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, context: RunContext, instance: dg.DagsterInstance, run_id: str) -> None:
        self.context, self.instance, self.run_id = context, instance, run_id
        self.handlers = {s: signal.getsignal(s) for s in self.SIGNALS}
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous = -1
        self._thread = threading.Thread(target=self._watch, name="tether-dagster-cancel")

    def __enter__(self) -> "CancelWatch":
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous)
        # Dagster leaves SIGTERM mapped to SIGINT's handler after a run: both put back (a
        # process started later would inherit an ignored SIGTERM).
        for signum, handler in self.handlers.items():
            signal.signal(signum, handler)
        os.close(self._write)  # the watcher reads EOF and ends
        self._thread.join(timeout=10)
        os.close(self._read)

    def _watch(self) -> None:
        while chunk := os.read(self._read, 64):
            for signum in chunk:
                if signum in self.SIGNALS:
                    self._cancel(signal.Signals(signum))

    def _cancel(self, signum: signal.Signals) -> None:
        handler = self.handlers.get(signum)
        try:
            if callable(handler):
                handler(signum, None)  # the run worker's: records the cancel and its reason
            else:
                self.context.cancel.request(f"received {signum.name}")
            run = self.instance.get_run_by_id(self.run_id)
            if run is not None and not run.is_finished:
                self.instance.report_run_canceling(run)
        except BaseException:
            with contextlib.suppress(Exception):
                self.context.emitter.emit(
                    EventType.LOG,
                    level="WARNING",
                    message="tether: could not mark the run canceling",
                )
