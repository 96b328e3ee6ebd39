"""User API: alert policies, a test alert, and the alerts sent with their delivery."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from tether_api.alerts import Alert, AlertEvent, AlertPolicy, AlertPolicySpec
from tether_api.audit import AuditAction
from tether_controlplane.api.deps import DbDep, NamePath, UserScope
from tether_controlplane.api.responses import LOOKUP
from tether_controlplane.services import alerts, audit

router = APIRouter(prefix="/api/v1/deployments/{dep}", tags=["alerts"])


@router.get("/alert-policies", responses=LOOKUP)
def list_alert_policies(scope: UserScope, db: DbDep) -> list[AlertPolicy]:
    """Secrets and passwords are shown as ********: they are write-only."""
    with db.read() as s:
        dep = scope.deployment(s)
        return [alerts.policy_model(dep, r) for r in alerts.policies(s, dep)]


@router.put("/alert-policies/{name}", responses=LOOKUP)
def put_alert_policy(
    name: NamePath, body: AlertPolicySpec, scope: UserScope, db: DbDep
) -> AlertPolicy:
    """Create or replace a policy. A secret or password left out (null) keeps its value."""
    with db.write() as s:
        dep = scope.deployment(s)
        policy = alerts.policy_model(dep, alerts.put_policy(s, dep, name, body))
        # The policy as GET shows it: its secrets and passwords masked.
        details = {"policy": policy.model_dump(mode="json", exclude={"name"})}
        audit.record(
            s, scope.principal, AuditAction.ALERT_POLICY_PUT, name, details, deployment=dep
        )
        return policy


@router.delete("/alert-policies/{name}", status_code=204, responses=LOOKUP)
def delete_alert_policy(name: NamePath, scope: UserScope, db: DbDep) -> Response:
    """It fires no more; the alerts it sent stay in the history."""
    with db.write() as s:
        dep = scope.deployment(s)
        alerts.delete_policy(s, alerts.find_policy(s, dep, name))
        audit.record(s, scope.principal, AuditAction.ALERT_POLICY_DELETE, name, deployment=dep)
    return Response(status_code=204)


@router.post("/alert-policies/{name}/test", status_code=202, responses=LOOKUP)
def test_alert_policy(name: NamePath, scope: UserScope, db: DbDep) -> Alert:
    """Send a test alert through the policy's channel; follow it in GET .../alerts."""
    with db.write() as s:
        dep = scope.deployment(s)
        row = alerts.find_policy(s, dep, name)
        [alert] = alerts.fire(
            s,
            dep,
            AlertEvent.TEST,
            f"test:{alerts.new_id()}",
            f"test alert of policy {name}",
            {"policy": name},
            only=row,
        )
        return alerts.alert_model(s, alert)


@router.get("/alerts", responses=LOOKUP)
def list_alerts(
    scope: UserScope, db: DbDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[Alert]:
    """Alerts fired, newest first, each with its delivery: PENDING, DELIVERED or FAILED,
    attempts and the last error."""
    with db.read() as s:
        return alerts.recent(s, scope.deployment(s), limit)
