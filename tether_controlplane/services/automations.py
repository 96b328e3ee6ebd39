"""What schedules and sensors (automations) share: found by location and name, listed,
turned on and off by users, stopped with a removed location, and their ticks listed.

Each kind is one ``AutomationKind``, in its own module (``services/schedules.py``,
``services/sensors.py``), which also holds what the kind alone does: keeping its rows in
step with snapshots, and its API models. Routes, CLI commands and UI pages take the kind.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from tether_api.audit import AuditAction
from tether_api.enums import AutomationStatus, TickStatus
from tether_controlplane.errors import Conflict, NotFound
from tether_controlplane.tables import (
    DeploymentRow,
    ScheduleRow,
    ScheduleTickRow,
    SensorRow,
    SensorTickRow,
    utcnow,
)

Row = TypeVar("Row", ScheduleRow, SensorRow)
TickRow = TypeVar("TickRow", ScheduleTickRow, SensorTickRow)
Model = TypeVar("Model")
TickModel = TypeVar("TickModel")


def effective_status(row: ScheduleRow | SensorRow) -> AutomationStatus:
    """A user's choice when there is one, else what the code declares."""
    return row.status or row.default_status


@dataclass(frozen=True)
class AutomationKind(Generic[Row, TickRow, Model, TickModel]):
    """One kind of automation, as the shared code needs it."""

    noun: str  # "schedule": in messages and audit entries
    plural: str  # "schedules": in paths and commands
    row: type[Row]
    tick_row: type[TickRow]
    tick_fk: str  # the tick table's column that holds its automation's id
    to_model: Callable[[Session, Row], Model]
    tick_model: Callable[[TickRow], TickModel]
    # What turning it on resets (so that the time it was off is not made up for).
    turned_on: Callable[[Row], None]
    start_action: AuditAction
    stop_action: AuditAction

    def find(self, session: Session, dep: DeploymentRow, location: str, name: str) -> Row:
        row = session.scalar(
            select(self.row).where(
                self.row.deployment_id == dep.id,
                self.row.code_location == location,
                self.row.name == name,
            )
        )
        if row is None:
            raise NotFound(
                f"{self.noun} {name!r} of code location {location!r} not found in deployment "
                f"{dep.name!r}; list them with GET .../{self.plural} "
                f"(tether {self.plural} list)"
            )
        return row

    def list_all(self, session: Session, dep: DeploymentRow) -> list[Model]:
        rows = session.scalars(
            select(self.row)
            .where(self.row.deployment_id == dep.id)
            .order_by(self.row.code_location, self.row.name)
        ).all()
        return [self.to_model(session, r) for r in rows]

    def set_status(self, row: Row, status: AutomationStatus) -> Row:
        """Turn it on or off: a user's choice, which redeploys keep. One its location no
        longer declares cannot be turned on."""
        if status == AutomationStatus.RUNNING:
            if not row.present:
                raise Conflict(
                    f"{self.noun} {row.name!r} is no longer declared by code location "
                    f"{row.code_location!r}: deploy code that declares it first"
                )
            if effective_status(row) != AutomationStatus.RUNNING:
                self.turned_on(row)
        row.status = status
        row.updated_at = utcnow()
        return row

    def audit_action(self, status: AutomationStatus) -> AuditAction:
        return self.start_action if status == AutomationStatus.RUNNING else self.stop_action

    def ticks(
        self, session: Session, row: Row, limit: int, status: TickStatus | None = None
    ) -> list[TickModel]:
        """Its ticks, newest first."""
        query = select(self.tick_row).where(self._ticks_of(row))
        if status is not None:
            query = query.where(self.tick_row.status == status)
        found = session.scalars(query.order_by(self.tick_row.id.desc()).limit(limit))
        return [self.tick_model(t) for t in found]

    def _ticks_of(self, row: Row) -> ColumnElement[bool]:
        column: ColumnElement[int] = getattr(self.tick_row, self.tick_fk)
        return column == row.id

    def last_tick(self, session: Session, row: Row) -> TickRow | None:
        return session.scalar(
            select(self.tick_row)
            .where(self._ticks_of(row))
            .order_by(self.tick_row.id.desc())
            .limit(1)
        )

    def forget_location(self, session: Session, dep: DeploymentRow, location: str) -> None:
        """A removed location's automations stop; their state stays for a redeploy of it."""
        session.execute(
            update(self.row)
            .where(self.row.deployment_id == dep.id, self.row.code_location == location)
            .values(present=False, updated_at=utcnow())
        )


AnyKind = AutomationKind[Any, Any, Any, Any]
