"""A control plane call whose answer is lost after the control plane committed it, retried as
Temporal retries the activity: a real control plane behind a real TCP proxy that forwards the
call, reads the whole answer (so the change is committed) and closes the agent's connection
without it. Retried, ``new_generation`` records one new generation, not two."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.code_locations import CodeLocationActivities
from activities.context import AgentContext
from activities.controlplane import ControlPlaneClient
from tests.support import Tenant
from workflows.models import NewGenerationInput, NewGenerationOutput

REASON = "redeploy requested through Temporal"


async def _message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 request or response, whole (a body by Content-Length); None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        assert name.strip().lower() != b"transfer-encoding", "chunked bodies are not forwarded"
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + await reader.readexactly(length)


class LosingProxy:
    """Forwards every HTTP exchange between the agent and the control plane, except the
    answer to the first request whose request line holds ``lose``: that request reaches the
    control plane, its answer is read whole, and the agent's connection is closed instead."""

    def __init__(self, upstream_port: int, lose: bytes) -> None:
        self.upstream_port = upstream_port
        self.lose = lose
        self.lost: list[bytes] = []  # request lines whose answers never reached the agent
        self.forwarded: list[bytes] = []  # and those whose answers did
        self.url = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            while (request := await _message(reader)) is not None:
                up_writer.write(request)
                await up_writer.drain()
                answer = await _message(up_reader)
                assert answer is not None, "the control plane closed the connection"
                line = request.split(b"\r\n", 1)[0]
                if not self.lost and self.lose in line:
                    self.lost.append(line)
                    return  # committed and answered, but the agent never hears of it
                self.forwarded.append(line)
                writer.write(answer)
                await writer.drain()
        finally:
            writer.close()
            up_writer.close()


@asynccontextmanager
async def losing_proxy(upstream_port: int, lose: bytes) -> AsyncIterator[LosingProxy]:
    proxy = LosingProxy(upstream_port, lose)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()


def location(tenant: Tenant, name: str) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/code-locations/{name}")
        assert r.status_code == 200, r.text
        found: dict[str, Any] = r.json()
        return found


async def retried(
    activities: CodeLocationActivities, input: NewGenerationInput, attempts: int = 3
) -> NewGenerationOutput:
    """As Temporal runs the activity: again with the same input while an attempt raises a
    retryable error."""
    env = ActivityEnvironment()
    for _ in range(attempts - 1):
        try:
            return await env.run(activities.new_generation, input)
        except ApplicationError as exc:
            # The connection closed without an answer: the client says the control plane
            # is unavailable, a retryable error, and Temporal retries.
            assert exc.type == "ControlPlaneUnavailable" and not exc.non_retryable, exc
            continue
    return await env.run(activities.new_generation, input)


@pytest.mark.parametrize(
    ("follows", "new_generations"),
    [(1, 1), (None, 2)],
    ids=["follows-its-generation", "earlier-agent-without-follows"],
)
async def test_a_retry_after_a_lost_answer_records_one_new_generation(
    tenant: Tenant, follows: int | None, new_generations: int
) -> None:
    """The workflow's activity names the generation it follows: the retry finds the one its
    lost attempt recorded and is answered with it. An agent of an earlier version names none
    and records a generation per call, as it always did."""
    assert tenant.deploy("quick")["code_location"]["generation"] == 1
    async with losing_proxy(tenant.cp.port, b"/generations") as proxy:
        client = ControlPlaneClient(proxy.url, tenant.agent_token)
        context = AgentContext(
            control_plane=client,
            launcher=cast(Any, None),
            temporal=cast(Any, None),
            agent_name="a",
            worker_control_plane_url=proxy.url,
        )
        activities = CodeLocationActivities(context)
        try:
            answer = await retried(
                activities, NewGenerationInput(name="quick", reason=REASON, follows=follows)
            )
        finally:
            await activities.aclose()
            await client.aclose()

    line = b"POST /api/v1/agent/code-locations/quick/generations HTTP/1.1"
    assert proxy.lost == [line] and proxy.forwarded == [line]
    found = location(tenant, "quick")
    assert found["generation"] == answer.generation == 1 + new_generations
    recorded = [c for c in found["status_history"] if c["message"] == REASON]
    assert len(recorded) == new_generations
