"""User API: code locations."""

from fastapi import APIRouter

from tether_api.audit import AuditAction
from tether_api.locations import CodeLocation, CodeLocationDeploy, CodeLocationPutResult
from tether_controlplane.api.deps import DbDep, NamePath, SettingsDep, UserScope
from tether_controlplane.api.responses import LOOKUP, LOOKUP_OR_CONFLICT
from tether_controlplane.services import audit, locations

router = APIRouter(prefix="/api/v1/deployments/{dep}/code-locations", tags=["code locations"])


@router.put("/{name}", responses=LOOKUP_OR_CONFLICT)
def deploy_code_location(
    name: NamePath, spec: CodeLocationDeploy, scope: UserScope, db: DbDep, settings: SettingsDep
) -> CodeLocationPutResult:
    """Create or update; enqueues SYNC_CODE_LOCATION when the spec changed."""
    with db.write() as s:
        dep = scope.deployment(s)
        row, changed = locations.put(s, dep, name, spec)
        if changed:
            # Only a changed spec deploys anything; the spec names no secrets (passthrough
            # variables are names, their values stay with the agent). Its log settings are a
            # policy, so they are recorded too.
            # What it runs, as given (a file, a module, a project's directory, an image):
            # the fields it names, none it leaves unset.
            given = {
                "image": spec.image,
                "working_directory": spec.working_directory,
                "module": spec.module,
                "python_file": spec.python_file,
                "attribute": spec.attribute,
                "logs": spec.logs.model_dump(mode="json") if spec.logs else None,
            }
            details = {
                "generation": row.generation,
                "kind": spec.kind.value,
                **{key: value for key, value in given.items() if value is not None},
            }
            audit.record(
                s, scope.principal, AuditAction.LOCATION_DEPLOY, name, details, deployment=dep
            )
        return CodeLocationPutResult(
            code_location=locations.to_model(
                s, dep, row, True, settings.agent_heartbeat_timeout_seconds
            ),
            changed=changed,
        )


@router.get("", responses=LOOKUP)
def list_code_locations(
    scope: UserScope, db: DbDep, settings: SettingsDep, include_removed: bool = False
) -> list[CodeLocation]:
    with db.read() as s:
        timeout = settings.agent_heartbeat_timeout_seconds
        return locations.list_all(s, scope.deployment(s), include_removed, timeout)


@router.get("/{name}", responses=LOOKUP)
def get_code_location(
    name: NamePath, scope: UserScope, db: DbDep, settings: SettingsDep
) -> CodeLocation:
    with db.read() as s:
        dep = scope.deployment(s)
        row = locations.find(s, dep, name)
        return locations.to_model(s, dep, row, True, settings.agent_heartbeat_timeout_seconds)


@router.post("/{name}/redeploy", status_code=202, responses=LOOKUP)
def redeploy_code_location(name: NamePath, scope: UserScope, db: DbDep) -> CodeLocation:
    with db.write() as s:
        dep = scope.deployment(s)
        row = locations.redeploy(s, dep, name)
        details = {"generation": row.generation}
        audit.record(
            s, scope.principal, AuditAction.LOCATION_REDEPLOY, name, details, deployment=dep
        )
        return locations.to_model(s, dep, row)


@router.delete("/{name}", status_code=202, responses=LOOKUP)
def remove_code_location(name: NamePath, scope: UserScope, db: DbDep) -> CodeLocation:
    """Enqueues REMOVE_CODE_LOCATION; the agent stops the server and reports STOPPED."""
    with db.write() as s:
        dep = scope.deployment(s)
        row = locations.remove(s, dep, name)
        audit.record(s, scope.principal, AuditAction.LOCATION_REMOVE, name, deployment=dep)
        return locations.to_model(s, dep, row)
