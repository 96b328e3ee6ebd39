"""Executing a job in-process: order, skipping after failure, captured output, cancel."""

import logging
import sys

import pytest
from pydantic import BaseModel

from tether_api.enums import EventType
from tether_api.wire import MAX_MESSAGE_CHARS
from tether_sdk import StepContext, execute_job, job, step
from tether_sdk.examples import quickstart
from tether_sdk.run_worker.events import MemoryEvents, truncate
from tether_sdk.run_worker.executor import CancelState, Outcome, execute

T = EventType


def _kinds(result_events: list, step_name: str | None = None) -> list[str]:
    return [e.type.value for e in result_events if step_name is None or e.step == step_name]


def test_success_runs_steps_in_order_and_passes_outputs() -> None:
    result = execute_job(quickstart.etl, {"source": "s3://x", "rows": 3})
    assert result.success
    assert result.outputs == {
        "extract": [0, 1, 2],
        "transform": [0, 2, 4],
        "load": 6,
        "report": None,
    }
    starts = [e.step for e in result.events_of(T.STEP_START)]
    assert starts == ["extract", "transform", "load", "report"]
    assert [e.seq for e in result.events] == list(range(1, len(result.events) + 1))
    assert result.events[0].type == T.RUN_START and result.events[-1].type == T.RUN_SUCCESS
    (load_ok,) = result.events_of(T.STEP_SUCCESS, "load")
    assert load_ok.data["metadata"] == {"rows": 3, "total": 6}
    assert load_ok.data["duration_s"] >= 0


def test_failure_skips_downstream_only() -> None:
    @step
    def root() -> int:
        return 1

    @step
    def boom(root: int) -> int:
        raise ValueError("bad row 7")

    @step
    def after_boom(boom: int) -> None: ...

    @step
    def independent(root: int) -> str:
        return "ran"

    result = execute_job(job("j", steps=[root, boom, after_boom, independent]))
    assert not result.success and result.report.outcome == Outcome.FAILURE
    (failure,) = result.events_of(T.STEP_FAILURE)
    assert failure.step == "boom" and failure.data["error"] == "ValueError: bad row 7"
    assert 'raise ValueError("bad row 7")' in failure.data["traceback"]
    (skipped,) = result.events_of(T.STEP_SKIPPED)
    assert skipped.step == "after_boom" and "'boom'" in skipped.message
    assert result.outputs["independent"] == "ran"
    final = result.events[-1]
    assert final.type == T.RUN_FAILURE and final.data["failed_steps"] == ["boom"]


def test_asset_materialization_before_step_success() -> None:
    result = execute_job(quickstart.refresh_sales)
    assert _kinds(result.events, "order_totals") == [
        "STEP_START",
        "ASSET_MATERIALIZATION",
        "STEP_SUCCESS",
    ]
    (mat,) = result.events_of(T.ASSET_MATERIALIZATION, "order_totals")
    assert mat.data == {"asset_key": "order_totals", "metadata": {"regions": 2}}
    assert result.outputs["top_region"] == "us"


def test_stdout_stderr_and_logging_become_log_events(capsys: pytest.CaptureFixture[str]) -> None:
    @step
    def noisy(ctx: StepContext) -> None:
        print("to stdout")
        print("two\nlines")
        sys.stderr.write("to stderr\n")
        ctx.log.info("via ctx.log %d", 42)
        logging.getLogger("some.library").warning("via a library logger")
        print("no newline at the end", end="")

    result = execute_job(job("j", steps=[noisy]))
    logs = [(e.level, e.message, e.data) for e in result.events_of(T.LOG, "noisy")]
    assert logs == [
        ("INFO", "to stdout", {"stream": "stdout"}),
        ("INFO", "two", {"stream": "stdout"}),
        ("INFO", "lines", {"stream": "stdout"}),
        ("WARNING", "to stderr", {"stream": "stderr"}),
        ("INFO", "via ctx.log 42", {"logger": "tether.step.noisy"}),
        ("WARNING", "via a library logger", {"logger": "some.library"}),
        ("INFO", "no newline at the end", {"stream": "stdout"}),
    ]
    # Output still reaches the real streams, and they are restored afterwards.
    out, err = capsys.readouterr()
    assert "to stdout\ntwo\nlines\n" in out and "to stderr\n" in err
    print("after the step")
    assert capsys.readouterr().out == "after the step\n"
    assert not any(type(h).__name__ == "_EventLogHandler" for h in logging.getLogger().handlers)


def test_logged_exception_includes_traceback() -> None:
    @step
    def logs_exc(ctx: StepContext) -> None:
        try:
            int("not a number")
        except ValueError:
            ctx.log.exception("lookup failed")

    (log,) = execute_job(job("j", steps=[logs_exc])).events_of(T.LOG)
    assert log.level == "ERROR" and log.message.startswith("lookup failed\nTraceback")


def test_long_messages_are_truncated() -> None:
    @step
    def long_line() -> None:
        print("x" * (MAX_MESSAGE_CHARS + 100))

    (log,) = execute_job(job("j", steps=[long_line])).events_of(T.LOG)
    assert len(log.message) <= MAX_MESSAGE_CHARS
    assert log.message.endswith("chars]")
    assert truncate("short") == "short"


def test_cancel_interrupts_the_step_and_skips_the_rest() -> None:
    cancel = CancelState()

    @step
    def first() -> int:
        return 1

    @step
    def slow(first: int) -> None:
        # What the worker's SIGTERM handler does, from inside the step.
        cancel.request("received SIGTERM")
        raise AssertionError("not reached: request() raises RunCanceled")

    @step
    def last(slow: None) -> None: ...

    @step
    def unrelated() -> None: ...

    events = MemoryEvents()
    report = execute(
        job("j", steps=[first, slow, last, unrelated]), None, events, run_id="r", cancel=cancel
    )
    assert report.outcome == Outcome.CANCELED
    assert [(e["type"].value, e["step"]) for e in events.events] == [
        ("RUN_START", None),
        ("STEP_START", "first"),
        ("STEP_SUCCESS", "first"),
        ("STEP_START", "slow"),
        ("STEP_CANCELED", "slow"),
        ("STEP_SKIPPED", "last"),
        ("STEP_SKIPPED", "unrelated"),
        ("RUN_CANCELED", None),
    ]
    assert events.events[-1]["message"] == "run canceled: received SIGTERM"


def test_step_catching_exception_cannot_swallow_cancel() -> None:
    cancel = CancelState()

    @step
    def stubborn() -> None:
        try:
            cancel.request("received SIGTERM")
        except Exception:  # what a careless step does; RunCanceled is not an Exception
            return

    events = MemoryEvents()
    report = execute(job("j", steps=[stubborn]), None, events, run_id="r", cancel=cancel)
    assert report.outcome == Outcome.CANCELED and report.canceled == ["stubborn"]


def test_async_step_and_config() -> None:
    class Cfg(BaseModel):
        n: int

    @step
    async def double(config: Cfg) -> int:
        return config.n * 2

    assert execute_job(job("j", steps=[double], config=Cfg), {"n": 4}).outputs == {"double": 8}
    with pytest.raises(ValueError, match="n: Field required"):
        execute_job(job("j", steps=[double], config=Cfg), {})
