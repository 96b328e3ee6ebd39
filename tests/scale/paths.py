"""The hot paths: what users (and the control plane's loops) do on a store ``fill`` made,
each through the control plane's own service functions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.scale.fill import SCHEDULES, Store
from tether_api.agent_requests import SyncCodeLocationPayload
from tether_api.enums import (
    RequestStatus,
    RunStatus,
)
from tether_controlplane.db import Database
from tether_controlplane.services import (
    agents,
    events,
    locations,
    requests,
    runs,
    scheduler,
    ticks,
)
from tether_controlplane.tables import (
    DeploymentRow,
    RunRow,
)


@dataclass
class Path:
    """One thing users (or the control plane's loops) do, timed as a whole. ``prepare``
    runs untimed before each call (what makes the call do its real work again)."""

    name: str
    call: Callable[[], object]
    prepare: Callable[[], object] | None = None


def paths(db: Database, store: Store) -> list[Path]:
    dep_id = store.deployment_id

    def dep(s: Any) -> DeploymentRow:
        found = s.get(DeploymentRow, dep_id)
        assert found is not None
        return found

    def run_list(
        statuses: tuple[RunStatus, ...] = (),
        tags: dict[str, str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        **filters: Any,
    ) -> Callable[[], object]:
        def call() -> object:
            with db.read() as s:
                return runs.list_page(
                    s,
                    dep(s),
                    list(statuses),
                    filters.get("location"),
                    tags or {},
                    limit,
                    cursor,
                    filters.get("job"),
                    created_after=filters.get("after"),
                    created_before=filters.get("before"),
                )

        return call

    def run_page() -> object:
        with db.read() as s:
            d = dep(s)
            row = runs.find(s, d, store.run_id)
            return (
                runs.to_model(s, d, row),
                events.step_events(s, row),
                runs.planned_steps(s, d, row),
                events.list_after(s, row, 0, 500),
            )

    def run_events(after: int) -> Callable[[], object]:
        def call() -> object:
            with db.read() as s:
                row = runs.find(s, dep(s), store.big_run_id)
                return events.list_after(s, row, after, 1000)

        return call

    def overview() -> object:
        with db.read() as s:
            d = dep(s)
            return (
                agents.list_all(s, d, 30.0),
                locations.list_all(s, d, False, 30.0),
                runs.list_page(s, d, [], None, {}, 10, None),
            )

    def scheduler_pass() -> object:
        at = store.schedule_clock[0]
        store.schedule_clock[0] = at + timedelta(hours=1)
        return scheduler.run_due(db, at)

    def free_a_slot() -> None:
        # A running run ends (untimed): admission then has a slot for the oldest queued run.
        with db.write() as s:
            pk = s.scalar(
                select(RunRow.pk)
                .where(
                    RunRow.deployment_id == dep_id,
                    RunRow.status.in_([RunStatus.STARTING, RunStatus.STARTED]),
                )
                .limit(1)
            )
            s.execute(update(RunRow).where(RunRow.pk == pk).values(status=RunStatus.SUCCESS))

    def admission() -> int:
        with db.write() as s:
            return runs.admit(s, dep(s))

    def pending_request() -> None:
        with db.write() as s:
            payload = SyncCodeLocationPayload(code_location="etl", generation=1)
            requests.enqueue(s, dep_id, payload, f"sync:{uuid.uuid4()}")

    def poll() -> object:
        with db.write() as s:
            claimed = requests.claim(s, dep_id, "agent-0", 10, 60.0)
            if not claimed:
                return requests.next_lease_expiry(s, dep_id)
            for row in claimed:  # the agent's ack comes with its next poll: same transaction
                row.status = RequestStatus.DONE
                row.finished_at = row.lease_expires_at
            return claimed

    def monitor() -> object:
        with db.write() as s:
            now = datetime.now(UTC)
            return runs.check_timeouts(s, now, 3600.0, 3600.0), runs.admit_all(s)

    def sensor_tick() -> object:
        # Rolled back: every call finds the same runs ended since the sensor's cursor.
        with db.engine.connect() as conn, Session(bind=conn) as s:
            try:
                tick = ticks.start_sensor_tick(s, store.sensor_id, store.now, 60.0)
                assert tick is not None, "the sensor found no ended run: nothing was timed"
                return tick
            finally:
                s.rollback()

    after, before = store.day
    return [
        Path("runs: newest page", run_list()),
        Path("runs: status FAILURE", run_list((RunStatus.FAILURE,))),
        Path("runs: status QUEUED", run_list((RunStatus.QUEUED,))),
        Path("runs: status SUCCESS or FAILURE", run_list((RunStatus.SUCCESS, RunStatus.FAILURE))),
        Path("runs: job (the most run)", run_list(job=store.common_job)),
        Path("runs: job (the least run)", run_list(job=store.rare_job)),
        Path("runs: code location", run_list(location="reports")),
        Path("runs: tag team=data (1 in 5)", run_list(tags={"team": "data"})),
        Path("runs: tag priority=high (1 in 100)", run_list(tags={"priority": "high"})),
        Path("runs: one day, mid-year", run_list(after=after, before=before)),
        Path("runs: a page near the oldest (by key)", run_list(cursor=store.deep_cursor)),
        Path(
            "runs: FAILURE, near the oldest",
            run_list((RunStatus.FAILURE,), cursor=store.deep_cursor),
        ),
        Path(
            "runs: tag team=data, near the oldest",
            run_list(tags={"team": "data"}, cursor=store.deep_cursor),
        ),
        Path("run page (run, steps, 500 events)", run_page),
        Path("run events from the start (1000)", run_events(0)),
        Path("run events from the end (1000)", run_events(max(store.big_run_last_seq - 1000, 0))),
        Path("overview", overview),
        Path(f"scheduler pass ({SCHEDULES} ticks due)", scheduler_pass),
        Path("admission (runs.admit, 1 slot free)", admission, prepare=free_a_slot),
        Path("agent poll (claim 1 request)", poll, prepare=pending_request),
        Path("agent poll (nothing pending)", poll),
        Path("monitor pass (timeouts, admit_all)", monitor),
        Path("sensor: run-status tick (runs ended since cursor)", sensor_tick),
    ]
