"""Run retries: whether a failed run gets a new attempt, by its job's declared policy or its
own tags. The new run is created by ``runs.transition`` in the transaction that records the
failure, so each failure makes at most one retry (``runs.parent_run_id`` is unique too)."""

from sqlalchemy.orm import Session

from tether_api.enums import FailureCause, RetryOn
from tether_api.user_api import RunCreate
from tether_controlplane.errors import NotFound
from tether_controlplane.services import locations, runcaller
from tether_controlplane.tables import DeploymentRow, RunRow

# A run's tags override its job's policy: e.g. tether/max_retries=3, tether/retry_on=any.
MAX_RETRIES_TAG = "tether/max_retries"
RETRY_ON_TAG = "tether/retry_on"
# The most attempts a tag may ask for, so a typo cannot loop a failing job for ever.
MAX_RETRIES_LIMIT = 100


def policy(session: Session, dep: DeploymentRow, run: RunRow) -> tuple[int, RetryOn]:
    """(max_retries, retry_on) for this run: its tags, else its job's declaration."""
    max_retries, retry_on = 0, RetryOn.ANY
    try:
        location = locations.find(session, dep, run.code_location)
    except NotFound:
        location = None
    snapshot = locations.snapshot_of(session, location) if location is not None else None
    if snapshot is not None:
        job = snapshot.job(run.job)
        if job is not None:
            max_retries, retry_on = job.max_retries, job.retry_on
    tagged = run.tags.get(MAX_RETRIES_TAG)
    if isinstance(tagged, str) and tagged.strip().isdigit():
        max_retries = min(int(tagged), MAX_RETRIES_LIMIT)
    tagged_on = run.tags.get(RETRY_ON_TAG)
    if tagged_on in {r.value for r in RetryOn}:
        retry_on = RetryOn(tagged_on)
    return max_retries, retry_on


def plan(
    session: Session, dep: DeploymentRow, run: RunRow, cause: FailureCause
) -> tuple[RunCreate, int] | None:
    """The retry to create for a run that just failed, and its total of attempts allowed;
    None when its policy says no more."""
    max_retries, retry_on = policy(session, dep, run)
    if run.attempt > max_retries:
        return None
    if retry_on == RetryOn.WORKER_DIED and cause != FailureCause.WORKER_DIED:
        return None
    # The caller stays: a retry of a run a Temporal workflow started is that workflow's too
    # (found by its workflow ID, terminated by its operation's cancel). The idempotency key
    # does not: it names the failed run.
    body = RunCreate(
        code_location=run.code_location,
        job=run.job,
        run_config=run.run_config,
        tags=run.tags,
        caller=runcaller.caller_of(run),
    )
    return body, max_retries + 1
