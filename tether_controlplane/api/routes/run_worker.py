"""Run worker API: a run token reaches its own run and nothing else."""

from fastapi import APIRouter

from tether_api.run_worker_api import EventBatch, EventBatchResult, WorkerHeartbeatResult
from tether_api.user_api import Run
from tether_controlplane.api.deps import DbDep, RunIdPath, RunScope
from tether_controlplane.api.responses import LOOKUP
from tether_controlplane.services import events, runs

router = APIRouter(prefix="/api/v1/runs", tags=["run worker"])


@router.get("/{run_id}", responses=LOOKUP)
def get_run(run_id: RunIdPath, scope: RunScope, db: DbDep) -> Run:
    with db.read() as s:
        dep = scope.deployment(s)
        return runs.to_model(s, dep, runs.find(s, dep, run_id))


@router.post("/{run_id}/events", responses=LOOKUP)
def post_events(
    run_id: RunIdPath, batch: EventBatch, scope: RunScope, db: DbDep
) -> EventBatchResult:
    """Store a batch; events already stored (same seq) are skipped, so retries are safe."""
    with db.write() as s:
        dep = scope.deployment(s)
        return events.ingest(s, dep, runs.find(s, dep, run_id, lock=True), batch.events)


@router.post("/{run_id}/heartbeat", responses=LOOKUP)
def heartbeat(run_id: RunIdPath, scope: RunScope, db: DbDep) -> WorkerHeartbeatResult:
    with db.write() as s:
        dep = scope.deployment(s)
        return events.heartbeat(s, runs.find(s, dep, run_id))
