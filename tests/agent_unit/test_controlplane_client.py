"""The agent's control-plane client against a real HTTP server: only Tether's own 401 (a JSON
body with a ``reason``) rejects the agent's token; any other 401, e.g. from an ingress or an
auth proxy in front of the control plane, is a warning and a retryable error."""

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.exceptions import ApplicationError

from activities.controlplane import TOKEN_REJECTED, ControlPlaneClient
from tether_api.agent_api import AgentHeartbeat


class _Server(ThreadingHTTPServer):
    # What every request is answered: status, content type, body.
    answer: tuple[int, str, bytes] = (401, "text/plain", b"Unauthorized")
    hits: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.hits += 1
        status, content_type, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def heartbeat(srv: _Server, rejected: list[str]) -> None:
    async def call() -> None:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        client = ControlPlaneClient(url, "tether_agent_x", on_rejected=rejected.append)
        try:
            await client.heartbeat(AgentHeartbeat(agent_name="a", version="0"))
        finally:
            await client.aclose()

    asyncio.run(call())


@pytest.mark.parametrize(
    "answer",
    [
        (401, "text/plain", b"Unauthorized"),  # a bare 401, e.g. from an ingress
        (401, "text/html", b"<html><body>401 Authorization Required</body></html>"),
        (401, "application/json", b'{"detail": "session expired"}'),  # an auth proxy's JSON
        (401, "application/json", b'{"detail": "x", "reason": "not_tethers"}'),
        (401, "application/json", b'["token_revoked"]'),
    ],
)
def test_a_401_that_is_not_tethers_is_retried_not_a_rejection(
    server: _Server, answer: tuple[int, str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    server.answer = answer
    rejected: list[str] = []
    with (
        caplog.at_level(logging.WARNING, logger="tether.agent"),
        pytest.raises(Exception) as raised,
    ):
        heartbeat(server, rejected)
    # A plain error, as for a 5xx: the activity's retry policy retries it.
    assert not isinstance(raised.value, ApplicationError), raised.value
    assert "401" in str(raised.value)
    assert rejected == []  # the agent is not stopped
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/agent/heartbeat"
    assert url in warning.getMessage() and "401" in warning.getMessage()

    # A one-off: the next attempt goes through.
    server.answer = (200, "application/json", b"{}")
    with pytest.raises(Exception) as second:  # {} is no Agent, but it was not refused
        heartbeat(server, rejected)
    assert "401" not in str(second.value) and rejected == []
    assert server.hits == 2


@pytest.mark.parametrize("reason", ["token_missing", "token_unknown", "token_revoked"])
def test_tethers_own_401_rejects_the_token(server: _Server, reason: str) -> None:
    detail = "this token ('a') was revoked on 2026-11-30 12:00:00 UTC; create a new one"
    server.answer = (
        401,
        "application/json",
        json.dumps({"detail": detail, "reason": reason}).encode(),
    )
    rejected: list[str] = []
    with pytest.raises(ApplicationError) as raised:
        heartbeat(server, rejected)
    assert raised.value.type == TOKEN_REJECTED and not raised.value.non_retryable
    assert rejected == [detail]
