"""The agent's client for the control plane's *user* run API, with its Nexus token.

The Nexus service (worker/nexus_service.py) and NexusRunWorkflow's activities
(activities/nexus_runs.py) create, read and terminate runs through it. The token is a
deployment-scoped ``nexus`` token from the agent's own settings (``TETHER_NEXUS_TOKEN``): it
can create and read runs of that deployment and terminate the ones it created, nothing else.
Nothing a Nexus caller sends is ever used as a credential.

Failures, as the agent's other client sorts them: the control plane unreachable or a 5xx is
``RunsApiUnavailable`` (retry), a 401 is ``RunsApiRejected`` (the token: an operator must fix
it; retried, so the work waits for a restarted agent rather than failing), any other 4xx is
``RunsApiRefused`` with the server's detail (retrying cannot help).
"""

from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from activities.controlplane import Reachability, _detail, _problem
from tether_api.run_worker_api import RunEvent
from tether_api.steps import StepSummary
from tether_api.user_api import Run

_STEPS = TypeAdapter(list[StepSummary])


class RunsApiError(Exception):
    """A call to the run API failed; the message says which and why."""


class RunsApiUnavailable(RunsApiError):
    pass


class RunsApiRejected(RunsApiError):
    pass


class RunsApiRefused(RunsApiError):
    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class _EventPage(BaseModel):
    events: list[RunEvent]
    last_seq: int


class RunsApiClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        deployment: str,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.deployment = deployment
        self.reachability = Reachability(self.base_url)
        self._prefix = f"/api/v1/deployments/{deployment}/runs"
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "tether-agent-nexus"},
            timeout=timeout,
            verify=verify,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def run_url(self, run_id: str) -> str:
        """The run's page in the web UI."""
        return f"{self.base_url}/d/{self.deployment}/runs/{run_id}"

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        url = f"{self._prefix}{path}"
        kwargs: dict[str, Any] = {"json": json, "params": params}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            self.reachability.failed(method, url, _problem(exc))
            raise RunsApiUnavailable(
                f"cannot reach the control plane at {self.base_url} to {what}: {_problem(exc)}"
            ) from None
        if response.status_code >= 500:
            problem = f"answered {response.status_code}: {_detail(response)[:200]}"
            self.reachability.failed(method, url, problem)
            raise RunsApiUnavailable(f"the control plane could not {what}: {problem}")
        self.reachability.answered()
        if response.status_code == 401:
            raise RunsApiRejected(
                f"the control plane rejected the agent's Nexus token ({what}): "
                f"{_detail(response)}; create one with `tether tokens create NAME --kind nexus "
                f"--deployment {self.deployment}` and restart the agent with TETHER_NEXUS_TOKEN"
            )
        if response.status_code >= 400:
            detail = _detail(response)
            raise RunsApiRefused(
                f"the control plane refused to {what} ({response.status_code}): {detail}",
                response.status_code,
                detail,
            )
        return response

    async def create(self, body: dict[str, Any]) -> Run:
        """Create a run (``body`` as ``POST .../runs`` takes it, with its idempotency key):
        the same key again answers the run created the first time."""
        response = await self._call(
            "POST", "", f"create a run of job {body.get('job')!r}", json=body
        )
        return Run.model_validate_json(response.content)

    async def get(self, run_id: str, wait_seconds: float = 0) -> Run:
        """The run; with ``wait_seconds``, answered as soon as it is final or after that long."""
        params = {"wait_seconds": wait_seconds} if wait_seconds else None
        response = await self._call(
            "GET",
            f"/{run_id}",
            f"read run {run_id}",
            params=params,
            timeout=wait_seconds + 30,
        )
        return Run.model_validate_json(response.content)

    async def steps(self, run_id: str) -> list[StepSummary]:
        response = await self._call("GET", f"/{run_id}/steps", f"read run {run_id}'s steps")
        return _STEPS.validate_json(response.content)

    async def events(self, run_id: str, types: list[str]) -> list[RunEvent]:
        """Every event of the given types, in order (paged through)."""
        found: list[RunEvent] = []
        after = 0
        while True:
            response = await self._call(
                "GET",
                f"/{run_id}/events",
                f"read run {run_id}'s events",
                params={"after": after, "limit": 1000, "type": types},
            )
            page = _EventPage.model_validate_json(response.content)
            found.extend(page.events)
            if len(page.events) < 1000:
                return found
            after = page.last_seq

    async def terminate(self, run_id: str) -> Run | None:
        """Terminate the run; None when it had already ended (409)."""
        try:
            response = await self._call("POST", f"/{run_id}/terminate", f"terminate run {run_id}")
        except RunsApiRefused as exc:
            if exc.status == 409:
                return None
            raise
        return Run.model_validate_json(response.content)
