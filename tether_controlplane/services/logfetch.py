"""Fetching a run's output from the agent that keeps it (log forwarding 'local').

The user's call enqueues a FETCH_RUN_LOGS request for the deployment's agents and waits; the
agent that holds the output answers through the agent API, and the answer is handed to the
waiting call in memory: the text passes through the control plane without being stored.

With several replicas behind a load balancer, the agent's answer may land on another replica
than the waiting call. The waiting replica names itself in the request (its ``replica_url``
setting, kept in the stored payload under ``WAITING_REPLICA``: a URL, never the text), and the
replica the answer lands on relays it there over HTTP (``services/logrelay.py``), with the
agent's own credential. Without ``replica_url`` the call times out (504) and can be asked again.
"""

import asyncio

from sqlalchemy.orm import Session

from tether_api.logs import FetchRunLogsPayload, RunLogsAnswer
from tether_controlplane.services import locations, requests
from tether_controlplane.tables import DeploymentRow, RequestRow, RunRow

# The key of the stored payload naming the replica that waits for the answer. Not a field of
# FetchRunLogsPayload: the agent never sees it (its model drops unknown keys when handed out).
WAITING_REPLICA = "waiting_replica"

_waiting: dict[str, asyncio.Future[RunLogsAnswer]] = {}


def enqueue(
    session: Session, dep: DeploymentRow, run: RunRow, replica_url: str | None = None
) -> str:
    """The request for the agent that launched the run (its host holds the output), or, when
    none is recorded, for the agents of the run's location's queue; its ID. ``replica_url``:
    this replica's URL, where another replica relays the answer if it lands there."""
    queue = (
        requests.agent_queue(run.agent_name)
        if run.agent_name
        else locations.queue_of_name(session, dep, run.code_location)
    )
    row = requests.enqueue(
        session,
        dep.id,
        FetchRunLogsPayload(run_id=run.id, agent=run.agent_name),
        queue=queue,
    )
    if replica_url:
        row.payload = {**row.payload, WAITING_REPLICA: replica_url}
    return str(row.id)


def waiting_replica(row: RequestRow) -> str | None:
    """The URL of the replica whose user call waits for this FETCH_RUN_LOGS request's answer
    (None: not recorded, as with one replica)."""
    found = row.payload.get(WAITING_REPLICA)
    return found if isinstance(found, str) and found else None


def expect(request_id: str, future: "asyncio.Future[RunLogsAnswer]") -> None:
    """Register the waiting call's future (from its session, before the request is
    committed: an agent may answer at once). Only ``answer``, on the event loop, sets it.
    Futures whose callers went away (cancelled) are dropped here, so none stays behind."""
    for gone in [key for key, waiting in _waiting.items() if waiting.done()]:
        _waiting.pop(gone, None)
    if not future.done():
        _waiting[request_id] = future


def forget(request_id: str) -> None:
    _waiting.pop(request_id, None)


def forget_future(future: "asyncio.Future[RunLogsAnswer]") -> None:
    """Drop ``future`` whatever request it waits for (its caller went away)."""
    for key in [key for key, waiting in _waiting.items() if waiting is future]:
        _waiting.pop(key, None)


def answer(request_id: str, body: RunLogsAnswer) -> bool:
    """Hand the answer to the waiting call (call on the event loop); False when none waits
    here any more."""
    future = _waiting.pop(request_id, None)
    if future is None or future.done():
        return False
    future.set_result(body)
    return True
