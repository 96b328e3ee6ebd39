"""Relaying an agent's answer to a log fetch to the replica whose user call waits for it.

With several control-plane replicas behind a load balancer, the user's GET .../logs (held on
one replica, ``services/logfetch.py``) and the agent's POST .../run-logs answering it may land
on different replicas. The answer then goes on, in memory, to the waiting replica, named in the
request (its ``replica_url``): the same POST to the same route there, with the agent's own
credential, so that replica checks it as it would the agent's, acknowledges the request
(idempotent) and hands the answer to its waiting call. The text is relayed, never stored.

A relayed answer is marked with ``RELAYED_HEADER`` and never relayed again, so two replicas
that disagree about who waits cannot bounce it between them.
"""

import logging

import httpx

log = logging.getLogger(__name__)

# Set on a relayed answer (its value: the URL of the replica that relayed it).
RELAYED_HEADER = "X-Tether-Relayed-By"


def should_relay(target: str, own_url: str | None, relayed_by: str | None) -> bool:
    """Whether an answer that no call on this replica waits for goes on to ``target`` (the
    waiting replica the request names): not when it is this replica, or the answer was
    relayed here already."""
    if relayed_by:
        return False
    return own_url is None or target.rstrip("/") != own_url.rstrip("/")


async def relay(
    target: str,
    path: str,
    body: bytes,
    authorization: str,
    own_url: str | None,
    timeout_seconds: float,
) -> bool:
    """POST ``body`` (the agent's answer, as JSON) to ``path`` on the replica at ``target``,
    with the agent's ``authorization``; True when that replica took it. A failure is logged,
    not raised: the agent's answer was recorded here, and the user, whose replica may be the
    one that went away, asks again."""
    headers = {
        "Authorization": authorization,
        "Content-Type": "application/json",
        RELAYED_HEADER: own_url or "unknown",
    }
    try:
        async with httpx.AsyncClient(base_url=target, timeout=timeout_seconds) as client:
            response = await client.post(path, content=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning(
            "could not relay the answer to %s to the replica waiting for it at %s: %s",
            path,
            target,
            exc or type(exc).__name__,
        )
        return False
    if response.is_error:
        log.warning(
            "the replica at %s refused the relayed answer to %s: HTTP %s %s",
            target,
            path,
            response.status_code,
            response.text[:500],
        )
        return False
    return True
