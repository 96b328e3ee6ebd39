"""Creating a run at most once per idempotency key: a create that repeats a key of its
deployment answers the run the first one made, whoever made it and however it ended.

The key is unique per deployment in the database too (``uq_runs_deployment_idempotency_key``):
of two creates racing with one key, the second's insert fails (on PostgreSQL it waits for the
first to commit), and it answers the first's run instead. On SQLite writes are serialized, so
the second finds the run before inserting."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether_api.user_api import RunCreate
from tether_controlplane.errors import Conflict
from tether_controlplane.services import runs
from tether_controlplane.tables import DeploymentRow, RunRow


def existing(session: Session, dep: DeploymentRow, body: RunCreate) -> RunRow | None:
    """The run made with ``body``'s key, if any. A run of another job under the same key is
    a Conflict: the key was reused for something else, and answering that run would lie."""
    if body.idempotency_key is None:
        return None
    found = session.scalar(
        select(RunRow).where(
            RunRow.deployment_id == dep.id, RunRow.idempotency_key == body.idempotency_key
        )
    )
    if found is None:
        return None
    if (found.code_location, found.job) != (body.code_location, body.job):
        raise Conflict(
            f"idempotency_key {body.idempotency_key!r} was already used in deployment "
            f"{dep.name!r} for run {found.id} of job {found.job!r} in code location "
            f"{found.code_location!r}; give this run of job {body.job!r} in "
            f"{body.code_location!r} a key of its own"
        )
    return found


def create_once(session: Session, dep: DeploymentRow, body: RunCreate) -> tuple[RunRow, bool]:
    """The run for ``body`` and whether this call created it (False: an earlier create with
    the same key did, and nothing was changed)."""
    found = existing(session, dep, body)
    if found is not None:
        return found, False
    if body.idempotency_key is None:
        return runs.create(session, dep, body), True
    try:
        with session.begin_nested():  # a lost race undoes only this insert
            return runs.create(session, dep, body), True
    except IntegrityError:
        # Another create with this key committed since the lookup above.
        found = existing(session, dep, body)
        if found is None:
            raise
        return found, False
