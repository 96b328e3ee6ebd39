"""User API: code locations."""

from fastapi import APIRouter

from tether_api.models import CodeLocation, CodeLocationPutResult, CodeLocationSpec
from tether_controlplane.api.deps import DbDep, NamePath, UserScope
from tether_controlplane.api.responses import LOOKUP
from tether_controlplane.services import locations

router = APIRouter(prefix="/api/v1/deployments/{dep}/code-locations", tags=["code locations"])


@router.put("/{name}", responses=LOOKUP)
def put_code_location(
    name: NamePath, spec: CodeLocationSpec, scope: UserScope, db: DbDep
) -> CodeLocationPutResult:
    """Create or update; enqueues SYNC_CODE_LOCATION when the spec changed."""
    with db.write() as s:
        dep = scope.deployment(s)
        row, changed = locations.put(s, dep, name, spec)
        return CodeLocationPutResult(
            code_location=locations.to_model(s, dep, row, with_history=True), changed=changed
        )


@router.get("", responses=LOOKUP)
def list_code_locations(
    scope: UserScope, db: DbDep, include_removed: bool = False
) -> list[CodeLocation]:
    with db.read() as s:
        return locations.list_all(s, scope.deployment(s), include_removed)


@router.get("/{name}", responses=LOOKUP)
def get_code_location(name: NamePath, scope: UserScope, db: DbDep) -> CodeLocation:
    with db.read() as s:
        dep = scope.deployment(s)
        return locations.to_model(s, dep, locations.find(s, dep, name), with_history=True)


@router.post("/{name}/redeploy", status_code=202, responses=LOOKUP)
def redeploy_code_location(name: NamePath, scope: UserScope, db: DbDep) -> CodeLocation:
    with db.write() as s:
        dep = scope.deployment(s)
        return locations.to_model(s, dep, locations.redeploy(s, dep, name))


@router.delete("/{name}", status_code=202, responses=LOOKUP)
def remove_code_location(name: NamePath, scope: UserScope, db: DbDep) -> CodeLocation:
    """Enqueues REMOVE_CODE_LOCATION; the agent stops the server and reports STOPPED."""
    with db.write() as s:
        dep = scope.deployment(s)
        return locations.to_model(s, dep, locations.remove(s, dep, name))
