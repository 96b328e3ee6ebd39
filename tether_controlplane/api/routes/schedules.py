"""User API: schedules, turned on and off, and their ticks."""

from typing import Annotated

from fastapi import APIRouter, Query

from tether_api.audit import AuditAction
from tether_api.enums import ScheduleStatus, TickStatus
from tether_api.schedules import Schedule, Tick
from tether_controlplane.api.deps import DbDep, NamePath, UserScope
from tether_controlplane.api.responses import LOOKUP, LOOKUP_OR_CONFLICT
from tether_controlplane.errors import Conflict
from tether_controlplane.services import audit, schedules

router = APIRouter(prefix="/api/v1/deployments/{dep}/schedules", tags=["schedules"])


@router.get("", responses=LOOKUP)
def list_schedules(scope: UserScope, db: DbDep) -> list[Schedule]:
    """Every schedule the deployment's code locations declare (or declared: ``present``
    false), with its status, next tick and last tick."""
    with db.read() as s:
        return schedules.list_all(s, scope.deployment(s))


@router.get("/{location}/{name}", responses=LOOKUP)
def get_schedule(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Schedule:
    with db.read() as s:
        return schedules.to_model(s, schedules.find(s, scope.deployment(s), location, name))


def _set(location: str, name: str, scope: UserScope, db: DbDep, status: ScheduleStatus) -> Schedule:
    with db.write() as s:
        dep = scope.deployment(s)
        row = schedules.find(s, dep, location, name)
        if not row.present and status == ScheduleStatus.RUNNING:
            raise Conflict(
                f"schedule {name!r} is no longer declared by code location {location!r}: "
                "deploy code that declares it first"
            )
        row = schedules.set_status(s, row, status)
        on = status == ScheduleStatus.RUNNING
        action = AuditAction.SCHEDULE_START if on else AuditAction.SCHEDULE_STOP
        audit.record(s, scope.principal, action, f"{location}/{name}", deployment=dep)
        return schedules.to_model(s, row)


@router.post("/{location}/{name}/start", responses=LOOKUP_OR_CONFLICT)
def start_schedule(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Schedule:
    """Turn it on: its ticks from now on create runs. The choice outlasts redeploys."""
    return _set(location, name, scope, db, ScheduleStatus.RUNNING)


@router.post("/{location}/{name}/stop", responses=LOOKUP)
def stop_schedule(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Schedule:
    """Turn it off. The choice outlasts redeploys."""
    return _set(location, name, scope, db, ScheduleStatus.STOPPED)


@router.get("/{location}/{name}/ticks", responses=LOOKUP)
def list_schedule_ticks(
    location: NamePath,
    name: NamePath,
    scope: UserScope,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: TickStatus | None = None,
) -> list[Tick]:
    """Its ticks, newest first, each with its outcome: the run it created, skipped (missed
    while the scheduler was down), or the error that kept it from creating one."""
    with db.read() as s:
        dep = scope.deployment(s)
        row = schedules.find(s, dep, location, name)
        return schedules.ticks(s, row, limit, status)
