"""User API: sensors, turned on and off, and their ticks."""

from typing import Annotated

from fastapi import APIRouter, Query

from tether_api.audit import AuditAction
from tether_api.enums import ScheduleStatus, TickStatus
from tether_api.ticks import Sensor, SensorTick
from tether_controlplane.api.deps import DbDep, NamePath, UserScope
from tether_controlplane.api.responses import LOOKUP, LOOKUP_OR_CONFLICT
from tether_controlplane.errors import Conflict
from tether_controlplane.services import audit, sensors

router = APIRouter(prefix="/api/v1/deployments/{dep}/sensors", tags=["sensors"])


@router.get("", responses=LOOKUP)
def list_sensors(scope: UserScope, db: DbDep) -> list[Sensor]:
    """Every sensor the deployment's code locations declare (or declared: ``present``
    false), with its status, cursor, next evaluation and last tick."""
    with db.read() as s:
        return sensors.list_all(s, scope.deployment(s))


@router.get("/{location}/{name}", responses=LOOKUP)
def get_sensor(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Sensor:
    with db.read() as s:
        return sensors.to_model(s, sensors.find(s, scope.deployment(s), location, name))


def _set(location: str, name: str, scope: UserScope, db: DbDep, status: ScheduleStatus) -> Sensor:
    with db.write() as s:
        dep = scope.deployment(s)
        row = sensors.find(s, dep, location, name)
        if not row.present and status == ScheduleStatus.RUNNING:
            raise Conflict(
                f"sensor {name!r} is no longer declared by code location {location!r}: "
                "deploy code that declares it first"
            )
        row = sensors.set_status(s, row, status)
        on = status == ScheduleStatus.RUNNING
        action = AuditAction.SENSOR_START if on else AuditAction.SENSOR_STOP
        audit.record(s, scope.principal, action, f"{location}/{name}", deployment=dep)
        return sensors.to_model(s, row)


@router.post("/{location}/{name}/start", responses=LOOKUP_OR_CONFLICT)
def start_sensor(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Sensor:
    """Turn it on: evaluated now, then at its interval. The choice outlasts redeploys."""
    return _set(location, name, scope, db, ScheduleStatus.RUNNING)


@router.post("/{location}/{name}/stop", responses=LOOKUP)
def stop_sensor(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Sensor:
    """Turn it off. The choice outlasts redeploys."""
    return _set(location, name, scope, db, ScheduleStatus.STOPPED)


@router.get("/{location}/{name}/ticks", responses=LOOKUP)
def list_sensor_ticks(
    location: NamePath,
    name: NamePath,
    scope: UserScope,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: TickStatus | None = None,
) -> list[SensorTick]:
    """Its evaluations, newest first: the runs each created, run keys already used, why it
    skipped, or the error and traceback of one that failed."""
    with db.read() as s:
        dep = scope.deployment(s)
        row = sensors.find(s, dep, location, name)
        return sensors.ticks(s, row, limit, status)
