"""Workflow unit tests: the real workflow classes run in a ``Worker`` against Temporal's
time-skipping test server, with stand-in activities registered under the real activity names
(``workflows.names``), in the style of Temporal's Python samples.

Stand-ins record every call in a per-test ``Recorder`` so that tests can assert what was
called, in which order and with which input. Things to know about the time-skipping server:

* Time skips only while nothing runs: an activity in progress (even one that heartbeats or
  completes asynchronously), a local activity (it holds the workflow task) or a workflow task
  holds the clock at real speed. Awaiting ``handle.result()`` lets it skip; ``skipping_time``
  does the same for a block of a test that waits for something else.
* An activity still running when its workflow closes (completed, or terminated at the end
  of a test) keeps the clock locked for good: its completion is refused, and the lock it took
  is never released. So every test gets its own server (it starts in about 0.1 s) instead of
  sharing one per module: a shared one would run every later test at real speed.
* It does not support workflow updates: the update tests use the dev server (``dev_env``).
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from worker.search_attributes import add_request
from worker.temporal_binary import temporal_binary
from workflows.handles import Handle, LaunchKind
from workflows.search_attributes import KEYS

STARTED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def binary(name: str) -> str:
    """A Temporal binary installed with the test dependencies; never downloaded (the tests
    run offline)."""
    try:
        return temporal_binary(name)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the test's own (see the module docstring for why)."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    # Tether's search attributes, which the workflows set (an unknown one fails the
    # workflow task); the test server takes no flag for them, only this call.
    await environment.client.operator_service.add_search_attributes(
        add_request(environment.client.namespace)
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server (no time skipping), for what the test server lacks: updates."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=KEYS,
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


# --- recording stand-in activities ------------------------------------------------------------


@dataclass
class Call:
    """One activity attempt, as a stand-in saw it."""

    name: str
    input: Any
    attempt: int
    scheduled: datetime  # the (virtual) time this attempt was scheduled
    run_id: str | None


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)

    def record(self, name: str, input: Any = None) -> Call:
        info = activity.info()
        call = Call(
            name=name,
            input=input,
            attempt=info.attempt,
            scheduled=info.current_attempt_scheduled_time,
            run_id=info.workflow_run_id,
        )
        self.calls.append(call)
        return call

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def inputs(self, name: str) -> list[Any]:
        return [c.input for c in self.of(name)]

    def count(self, name: str) -> int:
        return len(self.of(name))

    async def wait_for(
        self, predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
    ) -> None:
        """Poll ``predicate`` (plain or async) until it holds; stand-ins run in this event
        loop."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not await _holds(predicate):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what or predicate}; "
                    f"calls so far: {self.names()}"
                )
            await asyncio.sleep(0.01)


async def _holds(predicate: Callable[[], object]) -> bool:
    value = predicate()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)


async def until_canceled() -> NoReturn:
    """The body of a stand-in that never finishes on its own: it heartbeats (so that a
    cancel reaches it) until canceled, e.g. when the worker shuts down."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.05)


def handle(label: str, kind: LaunchKind = "code-server", pid: int = 4242) -> Handle:
    return Handle(label=label, kind=kind, launcher="process", pid=pid, started_at=STARTED_AT)


# --- running workflows -----------------------------------------------------------------------


def new_worker(
    client: Client, workflows: Sequence[type], activities: Sequence[Callable[..., Any]]
) -> Worker:
    """A worker on a fresh task queue (``worker.task_queue``)."""
    return Worker(
        client,
        task_queue=f"tq-{uuid.uuid4().hex[:10]}",
        workflows=list(workflows),
        activities=list(activities),
    )


@asynccontextmanager
async def skipping_time(env: WorkflowEnvironment) -> AsyncIterator[None]:
    """Let the test server skip time (as it does while a result is awaited) for the block:
    timers fire at once whenever no activity is running."""
    service = env.client.test_service
    await service.unlock_time_skipping(UnlockTimeSkippingRequest())
    try:
        yield
    finally:
        await service.lock_time_skipping(LockTimeSkippingRequest())


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def event_types(handle: WorkflowHandle[Any, Any]) -> list[EventType.ValueType]:
    return [event.event_type async for event in handle.fetch_history_events()]


async def canceled_activities(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Names of the activities the workflow requested to cancel, in order."""
    scheduled: dict[int, str] = {}
    canceled: list[str] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
            attrs_c = event.activity_task_cancel_requested_event_attributes
            canceled.append(scheduled[attrs_c.scheduled_event_id])
    return canceled


async def signals_processed(handle: WorkflowHandle[Any, Any], count: int) -> bool:
    """True once ``count`` signals are in the history and a workflow task completed after
    the last of them (the workflow has seen them)."""
    seen = 0
    processed = False
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            seen += 1
            processed = False
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            processed = True
    return seen >= count and processed
