"""The Dagster instance a run worker executes on (tether_sdk/dagster/instance.py) and the
warm-up a fork server does before it forks workers (tether_sdk/dagster/warmup.py), with the
real dagster: the instance keeps what Dagster's ephemeral instance keeps, from any thread,
and the warm-up leaves nothing behind that a forked worker could trip on."""

import os
import signal
import threading
from pathlib import Path

import dagster as dg
import pytest
from alembic.runtime.migration import MigrationContext

from tether_sdk.dagster.instance import run_instance
from tether_sdk.dagster.warmup import warm_up

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dg.op
def produce() -> int:
    return 2


@dg.op
def double(x: int) -> int:
    return x * 2


@dg.asset
def counted() -> dg.Output[list[int]]:
    return dg.Output([1, 2, 3], metadata={"rows": 3})


@dg.job
def two_steps() -> None:
    double(produce())


def _kinds(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.dagster_event_type.value for e in instance.all_logs(run_id) if e.dagster_event_type]


def test_a_run_keeps_the_events_dagsters_own_instance_keeps(tmp_path: Path) -> None:
    ours, theirs = run_instance(str(tmp_path / "ours")), dg.DagsterInstance.ephemeral()
    try:
        mine = two_steps.execute_in_process(run_config=QUIET, instance=ours)
        reference = two_steps.execute_in_process(run_config=QUIET, instance=theirs)
        assert mine.success and mine.output_for_node("double") == 4
        assert _kinds(ours, mine.run_id) == _kinds(theirs, reference.run_id)
        assert ours.get_run_by_id(mine.run_id).is_success  # type: ignore[union-attr]
        # Read back as Dagster reads a materialization (the latest of an asset).
        materialized = dg.materialize([counted], instance=ours)
        latest = ours.get_latest_materialization_event(dg.AssetKey("counted"))
        assert materialized.success and latest is not None
        assert latest.asset_materialization.metadata["rows"].value == 3  # type: ignore[union-attr]
        # The artifacts (the default IO manager's outputs) are in the folder it was given.
        assert (tmp_path / "ours" / "storage" / "counted").exists()
    finally:
        ours.dispose()
        theirs.dispose()


def test_both_storages_are_stamped_with_the_revision_dagster_stamps() -> None:
    ours, theirs = run_instance("/nonexistent-unused"), dg.DagsterInstance.ephemeral()
    try:
        for attribute in ("_run_storage", "_event_storage"):
            revisions = [
                MigrationContext.configure(getattr(i, attribute)._held_conn).get_current_revision()
                for i in (ours, theirs)
            ]
            assert revisions[0] is not None and revisions[0] == revisions[1], attribute
    finally:
        ours.dispose()
        theirs.dispose()


def test_events_are_stored_from_another_thread_and_instances_are_apart(tmp_path: Path) -> None:
    """The cancel watcher marks a run CANCELING from its own thread: that stores an event on
    the connection the run's thread uses."""
    first, second = run_instance(str(tmp_path)), run_instance(str(tmp_path))
    try:
        result = two_steps.execute_in_process(run_config=QUIET, instance=first)
        run = first.get_run_by_id(result.run_id)
        assert run is not None
        failures: list[BaseException] = []

        def cancel() -> None:
            try:
                first.report_run_canceling(run)
            except BaseException as exc:  # reported by the assertion below
                failures.append(exc)

        watcher = threading.Thread(target=cancel)
        watcher.start()
        watcher.join()
        assert failures == []
        assert _kinds(first, result.run_id)[-1] == "PIPELINE_CANCELING"
        assert second.get_run_by_id(result.run_id) is None
        assert second.all_logs(result.run_id) == []
    finally:
        first.dispose()
        second.dispose()


def test_the_warm_up_leaves_no_thread_no_file_and_the_signal_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read again

    def handler(signum: int, frame: object) -> None:
        return None

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        threads = set(threading.enumerate())
        warm_up()
        assert set(threading.enumerate()) == threads
        assert signal.getsignal(signal.SIGTERM) is handler
        assert signal.getsignal(signal.SIGINT) is handler
        assert os.listdir(tmp_path) == []  # its folder is gone
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
