"""The UI's only way to data: the REST API itself, called in-process with the session as the
bearer token. Pages therefore see exactly what the CLI sees, with the same permissions, and
no page reads the database behind the API's back."""

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

# The API answers in-process; the host is never resolved.
_BASE = "http://tether.internal"


@dataclass
class ApiProblem(Exception):
    """A non-2xx answer of the API, with its readable detail and per-field errors."""

    status: int
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.detail


class Api:
    """One signed-in user's view of the API, for one page."""

    def __init__(self, app: FastAPI, secret: str) -> None:
        self._client = _client(app)
        self._headers = {"Authorization": f"Bearer {secret}"}

    async def get(self, path: str, params: Any = None) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.call("POST", path, json=body)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._client.request(method, path, headers=self._headers, **kwargs)
        if response.status_code >= 400:
            raise _problem(response)
        return response.json() if response.content else None


def _client(app: FastAPI) -> httpx.AsyncClient:
    # One client per app: its connection to the ASGI app is only a function call.
    client: httpx.AsyncClient | None = getattr(app.state, "ui_api_client", None)
    if client is None:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=_BASE)
        app.state.ui_api_client = client
    return client


async def close(app: FastAPI) -> None:
    client: httpx.AsyncClient | None = getattr(app.state, "ui_api_client", None)
    if client is not None:
        await client.aclose()


def _problem(response: httpx.Response) -> ApiProblem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    return ApiProblem(
        status=response.status_code,
        detail=str(detail or f"the API answered {response.status_code}"),
        errors=list(errors or []),
    )


async def sign_in(app: FastAPI, credential: str) -> dict[str, Any]:
    """Trade a user token or a sign-in link's code for a session (``SessionCreated``)."""
    response = await _client(app).post(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {credential}"}
    )
    if response.status_code != 201:
        raise _problem(response)
    result: dict[str, Any] = response.json()
    return result
