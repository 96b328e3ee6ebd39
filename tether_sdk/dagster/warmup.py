"""A Dagster run's first-use costs, paid once before any run is forked.

Dagster imports most of its execution machinery lazily, at a process's first run: about 480
modules (storage, the execution plan, the in-process executor, the event log), some 400 ms
on these machines. A warm run worker is forked from the fork server, and a pooled one waits
in its container, with the definitions loaded but no run executed, so without this each run
paid that again; the 100-op chain of bench/bench_dagster.py ran in 860 ms in a fork instead
of 450 ms (execute_in_process's own time in a warm process).

``warm_up`` runs a job of this module's own (one op returning a constant) on an ephemeral
instance in a throwaway folder, through the same calls the run worker makes. None of the
user's code runs, nothing is written to the location's storage, and no thread is left
running (a fork copies only the thread that forks)."""

import signal
import tempfile
from typing import Any

import dagster as dg

from tether_sdk.dagster.config import planned_steps, validate_run_config
from tether_sdk.dagster.instance import run_instance

_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dg.op(name="tether_warm_up_op")
def _constant() -> int:
    return 1


@dg.job(name="tether_warm_up")
def _warm_up_job() -> None:
    _constant()


def _ignore(_entry: Any) -> None:
    return None


def warm_up() -> None:
    """Execute the warm-up job in this process, as a run worker would execute a run."""
    # Dagster maps SIGTERM to SIGINT's handler while it runs and leaves it so: put back.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        _execute()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _execute() -> None:
    validate_run_config(_warm_up_job, {})
    planned_steps(_warm_up_job, {})
    with tempfile.TemporaryDirectory(prefix="tether-dagster-warm-up-") as folder:
        instance = run_instance(folder)
        try:
            run_id = "00000000-0000-4000-8000-000000000000"
            instance.add_event_listener(run_id, _ignore)
            result = _warm_up_job.execute_in_process(
                run_config=_QUIET, instance=instance, run_id=run_id, raise_on_error=False
            )
            if not result.success:
                raise RuntimeError("the Dagster warm-up job did not succeed")
        finally:
            instance.dispose()
