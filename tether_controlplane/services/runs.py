"""Runs: creation, FIFO admission under the concurrency limit, status transitions."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from tether_api.agent_api import RunStatusReport
from tether_api.agent_requests import LaunchRunPayload, TerminateRunPayload
from tether_api.enums import (
    ACTIVE_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    CodeLocationStatus,
    FailureCause,
    RunStatus,
)
from tether_api.locations import CodeLocationError
from tether_api.logs import LogSettings
from tether_api.snapshot import JobSnapshot
from tether_api.user_api import Run, RunConfigValidation, RunCreate, RunPage
from tether_controlplane.db import wake_after_commit
from tether_controlplane.errors import ApiError, Conflict, Invalid, NotFound
from tether_controlplane.services import (
    agents,
    alerts,
    locations,
    logs,
    requests,
    retries,
    runcaller,
    runconfig,
    runtags,
    runwindow,
)
from tether_controlplane.tables import CodeLocationRow, DeploymentRow, RunRow, RunTagRow, utcnow
from tether_controlplane.wakeups import run_events_key

# Which status a report or event may move a run to, from which statuses.
ALLOWED_FROM: dict[RunStatus, frozenset[RunStatus]] = {
    # Only admission moves a run out of QUEUED into an active state: a report or event for a
    # QUEUED run must not bypass the concurrency limit.
    RunStatus.STARTING: frozenset({RunStatus.STARTING}),
    RunStatus.STARTED: frozenset({RunStatus.STARTING, RunStatus.STARTED}),
    RunStatus.CANCELING: frozenset(
        {RunStatus.QUEUED, RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING}
    ),
    RunStatus.SUCCESS: frozenset(
        {RunStatus.QUEUED, RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING}
    ),
    RunStatus.FAILURE: frozenset(
        {RunStatus.QUEUED, RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING}
    ),
    RunStatus.CANCELED: frozenset(
        {RunStatus.QUEUED, RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING}
    ),
}


def to_model(session: Session, dep: DeploymentRow, row: RunRow) -> Run:
    """The run as the API answers it, with the run that retries it (one indexed lookup)."""
    retry = session.scalar(select(RunRow.id).where(RunRow.parent_run_id == row.id))
    return _model(dep, row, retry)


def to_models(session: Session, dep: DeploymentRow, rows: Sequence[RunRow]) -> list[Run]:
    """Runs as the API answers them: their retries found with one query for them all."""
    retries_of: dict[str, str] = {}
    if rows:
        found = session.execute(
            select(RunRow.parent_run_id, RunRow.id).where(
                RunRow.parent_run_id.in_([r.id for r in rows])
            )
        )
        retries_of = {parent: child for parent, child in found if parent is not None}
    return [_model(dep, r, retries_of.get(r.id)) for r in rows]


def _model(dep: DeploymentRow, row: RunRow, retry_run_id: str | None) -> Run:
    return Run(
        id=row.id,
        deployment=dep.name,
        code_location=row.code_location,
        job=row.job,
        run_config=row.run_config,
        tags=row.tags,
        status=row.status,
        status_message=row.status_message,
        exit_code=row.exit_code,
        created_at=row.created_at,
        admitted_at=row.admitted_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        last_heartbeat_at=row.last_heartbeat_at,
        agent=row.agent_name,
        attempt=row.attempt,
        parent_run_id=row.parent_run_id,
        root_run_id=row.root_run_id,
        log_settings=LogSettings.model_validate(row.log_settings) if row.log_settings else None,
        log_url=row.log_url,
        retry_run_id=retry_run_id,
        idempotency_key=row.idempotency_key,
        caller=runcaller.caller_of(row),
    )


def find(session: Session, dep: DeploymentRow, run_id: str, lock: bool = False) -> RunRow:
    """``lock`` for any change: the row stays locked until commit, so two writers (a worker's
    final event and an agent's report) never both act on the same status they read."""
    query = select(RunRow).where(RunRow.id == run_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None or row.deployment_id != dep.id:
        raise NotFound(f"run {run_id!r} not found in deployment {dep.name!r}")
    return row


def find_job(
    session: Session,
    dep: DeploymentRow,
    body: RunCreate,
    location: CodeLocationRow | None = None,
) -> JobSnapshot | None:
    """The job a run would run, from its location's last snapshot; None while the location
    has reported none yet (the worker checks then). Raises NotFound for an unknown location
    and Invalid for a job it does not define. ``location``: the run's, when the caller has
    read it already."""
    if location is None:
        location = locations.find(session, dep, body.code_location)
    snapshot = locations.snapshot_of(session, location)
    if snapshot is None:
        return None
    job = snapshot.job(body.job)
    if job is None:
        known = ", ".join(j.name for j in snapshot.jobs) or "(none)"
        raise Invalid(
            f"job {body.job!r} is not defined in code location {body.code_location!r}; "
            f"its jobs are: {known}",
            loc=("body", "job"),
        )
    return job


def validate(session: Session, dep: DeploymentRow, body: RunCreate) -> RunConfigValidation:
    """What ``create`` would say about ``body``'s job and config, creating nothing."""
    try:
        job = find_job(session, dep, body)
    except Invalid as exc:  # an unknown job: an answer here, not an error
        return RunConfigValidation(valid=False, errors=exc.errors)
    if job is None:
        return RunConfigValidation(valid=True)
    errors = runconfig.config_errors(job.config_schema, body.run_config)
    errors += runtags.tag_errors(job, body.tags)
    return RunConfigValidation(valid=not errors, errors=errors, config_schema=job.config_schema)


def planned_steps(session: Session, dep: DeploymentRow, run: RunRow) -> list[str]:
    """The steps of a run still going, from its location's snapshot, so that those it has
    not reached yet can be shown. Empty for a finished run: its events tell what ran, and
    the code may have changed since."""
    if run.status in TERMINAL_RUN_STATUSES:
        return []
    try:
        location = locations.find(session, dep, run.code_location)
    except NotFound:
        return []
    snapshot = locations.snapshot_of(session, location)
    job = snapshot.job(run.job) if snapshot else None
    return [s.name for s in job.steps] if job else []


def create(session: Session, dep: DeploymentRow, body: RunCreate) -> RunRow:
    location = locations.find(session, dep, body.code_location)
    if location.status == CodeLocationStatus.ERROR:
        # Its code server cannot take the run now: refused here, with the location's error
        # (which says what fixes it), not accepted to fail a second later on the agent.
        error = CodeLocationError.model_validate(location.error) if location.error else None
        first = error.message.strip().split("\n", 1)[0] if error else ""
        raise Conflict(
            f"code location {body.code_location!r} is in ERROR, so no run of job "
            f"{body.job!r} can start there: {first or 'its code server failed'}. Launch it "
            "again once the location is RUNNING (`tether locations show "
            f"{body.code_location}` has the error and the code server's last log lines)"
        )
    job = find_job(session, dep, body, location)
    if job is not None:
        errors = runconfig.config_errors(job.config_schema, body.run_config)
        if errors:
            raise Invalid(runconfig.describe(job.name, errors), errors=errors)
        refused = runtags.tag_errors(job, body.tags)
        if refused:
            raise Invalid(f"invalid run of job {job.name!r}: {refused[0].msg}", errors=refused)
    now = utcnow()
    row = RunRow(
        id=str(uuid.uuid4()),
        deployment_id=dep.id,
        code_location=body.code_location,
        job=body.job,
        run_config=body.run_config,
        tags=body.tags,
        status=RunStatus.QUEUED,
        created_at=now,
        idempotency_key=body.idempotency_key,
    )
    if body.caller is not None:
        runcaller.record(row, body.caller)
    session.add(row)
    session.flush()
    session.add_all(RunTagRow(run_pk=row.pk, key=k, value=v) for k, v in body.tags.items())
    admit(session, dep)
    return row


def admit(session: Session, dep: DeploymentRow) -> int:
    """Move QUEUED runs to STARTING, oldest first, while the deployment has free slots, and
    enqueue a LAUNCH_RUN for each. Returns how many were admitted.

    Callers hold the write lock (SQLite) or, here, the deployment row's lock (PostgreSQL),
    so two admissions never both see the same free slot."""
    # FOR NO KEY UPDATE: serializes admissions, yet does not conflict with the key-share locks
    # that inserting a run (its foreign key) takes on the same row.
    session.execute(
        select(DeploymentRow.id).where(DeploymentRow.id == dep.id).with_for_update(key_share=True)
    )
    active = session.scalar(
        select(func.count())
        .select_from(RunRow)
        .where(RunRow.deployment_id == dep.id, RunRow.status.in_(ACTIVE_RUN_STATUSES))
    )
    free = dep.run_concurrency_limit - (active or 0)
    if free <= 0:
        return 0
    # The oldest queued runs' pks from (status, deployment_id, pk) alone: read as rows, in pk
    # order, PostgreSQL may bet on finding queued runs early among the oldest runs, and read
    # a year of them to reach the backlog at the newest end.
    oldest = (
        select(RunRow.pk)
        .where(RunRow.deployment_id == dep.id, RunRow.status == RunStatus.QUEUED)
        .order_by(RunRow.pk)
        .limit(free)
    )
    pks = list(session.scalars(oldest))
    locked = session.scalars(
        select(RunRow)
        .where(RunRow.pk.in_(pks))
        .order_by(RunRow.pk)
        # A queued run locked by another writer (being canceled) is skipped, not waited for:
        # waiting here, holding the deployment lock, could deadlock with that writer. (Its
        # slot goes to the next admission.)
        .with_for_update(skip_locked=True)
        # The row as locked, not as this session may hold it: one canceled meanwhile stays.
        .execution_options(populate_existing=True)
    )
    queued = [run for run in locked if run.status == RunStatus.QUEUED] if pks else []
    now = utcnow()
    queues: dict[str, str] = {}  # one lookup per location, not per run, in a burst
    for run in queued:
        run.status = RunStatus.STARTING
        run.admitted_at = now
        payload = LaunchRunPayload(
            run_id=run.id,
            code_location=run.code_location,
            job=run.job,
            caller_namespace=run.caller_namespace,
            caller_workflow_id=run.caller_workflow_id,
        )
        if run.code_location not in queues:
            queues[run.code_location] = locations.queue_of_name(session, dep, run.code_location)
        requests.enqueue(
            session,
            dep.id,
            payload,
            f"launch:{run.id}",
            queue=queues[run.code_location],
        )
    return len(queued)


def transition(
    session: Session,
    dep: DeploymentRow,
    run: RunRow,
    status: RunStatus,
    message: str | None = None,
    exit_code: int | None = None,
    cause: FailureCause = FailureCause.WORKER_DIED,
) -> bool:
    """Apply a status change if the state machine allows it. Terminal states are final:
    a late report never overwrites SUCCESS with FAILURE. Returns whether anything changed.
    ``cause``: why a FAILURE happened, which decides whether it is retried."""
    current = run.status
    if status == RunStatus.CANCELING and current == RunStatus.QUEUED:
        status = RunStatus.CANCELED  # nothing runs yet: nothing to wait for
    if current not in ALLOWED_FROM.get(status, frozenset()):
        return False
    now = utcnow()
    changed = current != status
    run.status = status
    if message is not None:
        run.status_message = message
    if exit_code is not None:
        run.exit_code = exit_code
    if status in ACTIVE_RUN_STATUSES and run.admitted_at is None:
        run.admitted_at = now
    if status == RunStatus.STARTED and run.started_at is None:
        run.started_at = now
        run.last_heartbeat_at = now
    if status in TERMINAL_RUN_STATUSES:
        run.ended_at = now
        # Followers of the run's event stream learn it ended without waiting for a re-read.
        wake_after_commit(session, run_events_key(run.pk))
        # A run a user was canceling fails as it is killed: that is no failure to retry.
        if status == RunStatus.FAILURE and changed and current != RunStatus.CANCELING:
            _retry(session, dep, run, cause)
        if status in (RunStatus.FAILURE, RunStatus.SUCCESS) and changed:
            alerts.run_ended(session, dep, run)  # decided now, delivered by the outbox
        if current in ACTIVE_RUN_STATUSES:
            admit(session, dep)  # a slot is free: let the next queued run in
    return changed


def _retry(session: Session, dep: DeploymentRow, run: RunRow, cause: FailureCause) -> None:
    """A new attempt of a failed run, when its job or tags ask for one."""
    planned = retries.plan(session, dep, run, cause)
    if planned is None:
        return
    body, attempts = planned
    try:
        with session.begin_nested():  # a refused retry leaves the failure recorded as it is
            child = create(session, dep, body)
            child.parent_run_id = run.id
            child.root_run_id = run.root_run_id or run.id
            child.attempt = run.attempt + 1
            session.flush()
    except ApiError as exc:
        run.status_message = f"{run.status_message or ''}\n(not retried: {exc.detail})".strip()
        return
    note = f"retried as run {child.id} (attempt {child.attempt} of {attempts})"
    run.status_message = f"{run.status_message or ''}\n{note}".strip()


def report(session: Session, dep: DeploymentRow, run: RunRow, body: RunStatusReport) -> RunRow:
    message = body.message
    log_tail = logs.enforce_tail(logs.run_settings(session, dep, run), body.log_tail)
    if log_tail:
        tail = "\n".join(log_tail)
        message = f"{message or ''}\n--- last log lines ---\n{tail}".lstrip("\n")
    transition(session, dep, run, body.status, message, body.exit_code)
    if body.agent is not None and body.status == RunStatus.STARTED and run.agent_name is None:
        # Its host: the one to blame if it goes silent. Recorded even when the worker's own
        # events got there first (a warm run may have STARTED, or even ended, by now).
        run.agent_name = body.agent
    return run


def terminate(session: Session, dep: DeploymentRow, run: RunRow, reason: str) -> RunRow:
    current = run.status
    if current in (RunStatus.SUCCESS, RunStatus.FAILURE):
        raise Conflict(f"run {run.id} already finished with {current.value}; nothing to terminate")
    if current == RunStatus.CANCELED:
        return run
    if current == RunStatus.QUEUED:
        # Never handed to an agent: nothing to stop.
        transition(session, dep, run, RunStatus.CANCELED, reason)
        return run
    transition(session, dep, run, RunStatus.CANCELING, reason)
    enqueue_terminate(session, dep, run, reason)
    return run


def enqueue_terminate(session: Session, dep: DeploymentRow, run: RunRow, reason: str) -> None:
    payload = TerminateRunPayload(run_id=run.id, reason=reason)
    requests.enqueue(
        session,
        dep.id,
        payload,
        f"terminate:{run.id}",
        queue=locations.queue_of_name(session, dep, run.code_location),
    )


def list_page(
    session: Session,
    dep: DeploymentRow,
    statuses: list[RunStatus],
    code_location: str | None,
    tags: dict[str, str],
    limit: int,
    cursor: str | None,
    job: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    caller_workflow_id: str | None = None,
    caller_namespace: str | None = None,
) -> RunPage:
    """Newest first, a page at a time by pk (never OFFSET). ``created_after`` (inclusive)
    and ``created_before`` (exclusive) bound the runs' creation time."""
    created_after, created_before = (
        runwindow.bounded(created_after),
        runwindow.bounded(created_before),
    )
    if created_after is not None and created_before is not None and created_after >= created_before:
        # An empty window: no run was created in it (the web UI says which bound to move).
        return RunPage(runs=[], next_cursor=None)
    query = select(RunRow).where(RunRow.deployment_id == dep.id)
    if code_location:
        query = query.where(RunRow.code_location == code_location)
    if job:
        query = query.where(RunRow.job == job)
    if caller_workflow_id:
        query = query.where(RunRow.caller_workflow_id == caller_workflow_id)
    if caller_namespace:
        query = query.where(RunRow.caller_namespace == caller_namespace)
    # The column the page is read in the order of: the runs' pk, or with a tag filter the
    # first tag's run_pk (the same value), so that the database can read the tag's runs
    # newest first from (key, value, run_pk) and stop after a page. SQLite sees no order in
    # runs.pk there: it would read every run with the tag and sort them.
    order: Any = RunRow.pk
    for key, value in tags.items():
        # A join, not ``pk IN (subquery)``, which SQLite evaluates whole first.
        tag = aliased(RunTagRow)
        query = query.join(tag, and_(tag.run_pk == RunRow.pk, tag.key == key, tag.value == value))
        if order is RunRow.pk:
            order = tag.run_pk
    if created_after is not None or created_before is not None:
        low, high = runwindow.pk_range(session, dep.id, created_after, created_before)
        if low is not None:
            query = query.where(order >= low)
        if high is not None:
            query = query.where(order < high)
        if created_after is not None:
            query = query.where(RunRow.created_at >= created_after)
        if created_before is not None:
            query = query.where(RunRow.created_at < created_before)
    if cursor is not None:
        cursor_pk = requests.parse_id(cursor)
        if cursor_pk is None:
            raise Invalid(
                f"invalid cursor {cursor!r}: pass the next_cursor of a previous page",
                loc=("query", "cursor"),
            )
        query = query.where(order < cursor_pk)
    rows = _newest(session, query, order, sorted(set(statuses)), limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return RunPage(
        runs=to_models(session, dep, rows),
        next_cursor=str(rows[-1].pk) if more and rows else None,
    )


def _newest(
    session: Session,
    query: Select[RunRow],
    order: Any,
    statuses: list[RunStatus],
    n: int,
) -> list[RunRow]:
    """The ``n`` newest runs ``query`` selects, by ``order`` (a pk column), of any of
    ``statuses`` (none: any status).

    Their pks first, then the runs: a query of pks alone is answered from the filter's
    index (it holds them), which PostgreSQL's planner prefers to reading the runs
    themselves newest first while filtering them, a bet on the filter being common that
    loses when its runs are all old (a job no longer run) and reads most of the table.
    Several statuses are read one at a time, each newest first from (status, deployment_id,
    pk), and merged here: for ``status IN (...)`` the database would read every run of
    those statuses (most of a year's runs are SUCCESS) and sort them, to keep 51."""
    pks = query.with_only_columns(RunRow.pk).order_by(order.desc()).limit(n)
    newest: list[int] = []
    for status in statuses:
        newest += session.scalars(pks.where(RunRow.status == status))
    if not statuses:
        newest = list(session.scalars(pks))
    newest = sorted(newest, reverse=True)[:n]
    if not newest:
        return []
    found = select(RunRow).where(RunRow.pk.in_(newest)).order_by(RunRow.pk.desc())
    return list(session.scalars(found))


def check_timeouts(
    session: Session,
    now: datetime,
    start_timeout: float,
    heartbeat_timeout: float,
    agent_timeout: float | None = None,
) -> list[str]:
    """Fail runs stuck in STARTING or whose worker went silent; returns their IDs."""
    failed: list[str] = []
    start_cutoff = now - timedelta(seconds=start_timeout)
    beat_cutoff = now - timedelta(seconds=heartbeat_timeout)
    stuck = session.scalars(
        select(RunRow)
        .where(
            RunRow.status == RunStatus.STARTING,
            func.coalesce(RunRow.admitted_at, RunRow.created_at) < start_cutoff,
        )
        .with_for_update(skip_locked=True)
    ).all()
    silent = session.scalars(
        select(RunRow)
        .where(
            RunRow.status.in_([RunStatus.STARTED, RunStatus.CANCELING]),
            func.coalesce(
                RunRow.last_heartbeat_at, RunRow.started_at, RunRow.admitted_at, RunRow.created_at
            )
            < beat_cutoff,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for run in [*stuck, *silent]:
        dep = session.get(DeploymentRow, run.deployment_id)
        assert dep is not None
        if run.status == RunStatus.STARTING:
            reason = (
                f"the run did not start within {start_timeout:g} s "
                "(run_start_timeout_seconds); is an agent running for this deployment?"
            )
            transition(session, dep, run, RunStatus.FAILURE, reason)
        elif run.status == RunStatus.CANCELING:
            reason = f"the run worker went silent for {heartbeat_timeout:g} s while canceling"
            transition(session, dep, run, RunStatus.CANCELED, reason)
        else:
            reason = (
                f"no heartbeat from the run worker for {heartbeat_timeout:g} s "
                "(run_heartbeat_timeout_seconds): it died or lost the control plane"
            )
            lost = agents.lost_agent(
                session, dep, run.agent_name, agent_timeout or heartbeat_timeout, now
            )
            if lost is not None:
                reason = (
                    f"agent {lost.name} and its host were lost (no agent heartbeat since "
                    f"{lost.last_heartbeat_at:%Y-%m-%d %H:%M:%S} UTC), and the run worker it "
                    f"launched there sent no heartbeat for {heartbeat_timeout:g} s "
                    "(run_heartbeat_timeout_seconds)"
                )
            transition(session, dep, run, RunStatus.FAILURE, reason)
        # Make sure the agent cleans up whatever is left of the worker.
        enqueue_terminate(session, dep, run, reason)
        failed.append(run.id)
    return failed


def admit_all(session: Session) -> int:
    """Admission pass over every deployment with queued runs (covers limit increases)."""
    dep_ids = session.scalars(
        select(RunRow.deployment_id).where(RunRow.status == RunStatus.QUEUED).distinct()
    ).all()
    total = 0
    for dep_id in dep_ids:
        dep = session.get(DeploymentRow, dep_id)
        if dep is not None:
            total += admit(session, dep)
    return total
