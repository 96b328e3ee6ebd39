"""User API of schedules and sensors: one set of routes per kind, made by ``router``: list,
get, start, stop and ticks. Their function names (``list_schedules``, ``start_sensor``...)
are the operation IDs a generated client calls."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query

from tether_api.enums import AutomationStatus, TickStatus
from tether_controlplane.api.deps import DbDep, NamePath, UserScope
from tether_controlplane.api.responses import LOOKUP, LOOKUP_OR_CONFLICT
from tether_controlplane.services import audit
from tether_controlplane.services.automations import AnyKind


@dataclass(frozen=True)
class Docs:
    """What each kind's routes say in the API reference."""

    list: str
    start: str
    ticks: str


def router(kind: AnyKind, model: type[Any], tick_model: type[Any], docs: Docs) -> APIRouter:
    noun, plural = kind.noun, kind.plural
    routes = APIRouter(prefix=f"/api/v1/deployments/{{dep}}/{plural}", tags=[plural])

    def list_all(scope: UserScope, db: DbDep) -> Any:
        with db.read() as s:
            return kind.list_all(s, scope.deployment(s))

    def get_one(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Any:
        with db.read() as s:
            return kind.to_model(s, kind.find(s, scope.deployment(s), location, name))

    def switch(location: str, name: str, scope: UserScope, db: DbDep, to: AutomationStatus) -> Any:
        with db.write() as s:
            dep = scope.deployment(s)
            row = kind.set_status(kind.find(s, dep, location, name), to)
            audit.record(
                s, scope.principal, kind.audit_action(to), f"{location}/{name}", deployment=dep
            )
            return kind.to_model(s, row)

    def start(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Any:
        return switch(location, name, scope, db, AutomationStatus.RUNNING)

    def stop(location: NamePath, name: NamePath, scope: UserScope, db: DbDep) -> Any:
        return switch(location, name, scope, db, AutomationStatus.STOPPED)

    def ticks(
        location: NamePath,
        name: NamePath,
        scope: UserScope,
        db: DbDep,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        status: TickStatus | None = None,
    ) -> Any:
        with db.read() as s:
            row = kind.find(s, scope.deployment(s), location, name)
            return kind.ticks(s, row, limit, status)

    one = "/{location}/{name}"
    routes.add_api_route(
        "",
        list_all,
        methods=["GET"],
        name=f"list_{plural}",
        response_model=list[model],  # type: ignore[valid-type]
        responses=LOOKUP,
        description=docs.list,
    )
    routes.add_api_route(
        one,
        get_one,
        methods=["GET"],
        name=f"get_{noun}",
        response_model=model,
        responses=LOOKUP,
    )
    routes.add_api_route(
        f"{one}/start",
        start,
        methods=["POST"],
        name=f"start_{noun}",
        response_model=model,
        responses=LOOKUP_OR_CONFLICT,
        description=docs.start,
    )
    routes.add_api_route(
        f"{one}/stop",
        stop,
        methods=["POST"],
        name=f"stop_{noun}",
        response_model=model,
        responses=LOOKUP,
        description="Turn it off. The choice outlasts redeploys.",
    )
    routes.add_api_route(
        f"{one}/ticks",
        ticks,
        methods=["GET"],
        name=f"list_{noun}_ticks",
        response_model=list[tick_model],  # type: ignore[valid-type]
        responses=LOOKUP,
        description=docs.ticks,
    )
    return routes
