"""The run worker's HTTP client for the control plane, with its retry policy.

Connection errors, timeouts, 5xx (and 408/429) are retried with capped, jittered
exponential backoff, until an optional deadline; any other 4xx is final (a revoked token,
a deleted run): retrying cannot help, so ControlPlaneRejected is raised at once.
"""

import functools
import random
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from tether_api import API_PREFIX
from tether_api.run_worker_api import EventBatchResult, WorkerHeartbeatResult
from tether_api.user_api import Run

RETRYABLE_STATUS = frozenset({408, 429})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ControlPlaneRejected(Exception):
    """The control plane answered with a non-retryable 4xx."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"control plane rejected the request: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class DeliveryTimeout(Exception):
    """Retrying did not succeed before the deadline; carries the last error."""


class Backoff:
    """Exponential delays capped at ``cap``, with 'equal jitter' (half fixed, half random)
    so that many workers retrying after one outage do not all hit the server at once."""

    def __init__(self, initial: float = 0.2, cap: float = 10.0, factor: float = 2.0) -> None:
        self.initial, self.cap, self.factor = initial, cap, factor
        self.attempt = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return base / 2 + random.uniform(0, base / 2)


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    # httpx's own default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), built once.
    return httpx.create_ssl_context()


def tls_context(url: str) -> ssl.SSLContext:
    """One TLS context per process, and none loaded for plain http: loading the CA bundle
    costs ~25 ms of CPU per client, which the worker (three clients) paid on every run."""
    if url.lower().startswith("https:"):
        return _default_tls_context()
    return _PLAIN_HTTP


# Never used for a connection (http:// has no TLS); httpx just wants a context.
_PLAIN_HTTP = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def preload() -> None:
    """Import what httpx imports only when its first client is made (httpcore, h11: ~12 ms).
    A fork server calls this once so that its workers do not each pay it."""
    ControlPlaneClient("http://127.0.0.1", "-", "-").close()


class ControlPlaneClient:
    """Calls ``{url}/api/v1/runs/{run_id}/...`` with the run's Bearer token.

    One instance per thread: each has its own connection pool.
    """

    def __init__(
        self,
        url: str,
        run_id: str,
        token: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.base = f"{url.rstrip('/')}{API_PREFIX}/runs/{run_id}"
        self._http = httpx.Client(
            timeout=timeout,
            verify=tls_context(url),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        self._log = log or _stderr

    def close(self) -> None:
        self._http.close()

    def get_run(self, deadline: Callable[[], float | None] = lambda: None) -> Run:
        response = self.request("GET", "", deadline=deadline)
        return Run.model_validate_json(response.content)

    def post_events(
        self, body: bytes, deadline: Callable[[], float | None] = lambda: None
    ) -> EventBatchResult:
        response = self.request("POST", "/events", content=body, deadline=deadline)
        return EventBatchResult.model_validate_json(response.content)

    def heartbeat(self) -> WorkerHeartbeatResult:
        """One attempt (the next beat is the retry); raises on any failure."""
        response = self._once("POST", "/heartbeat", b"{}")
        return WorkerHeartbeatResult.model_validate_json(response.content)

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        deadline: Callable[[], float | None] = lambda: None,
    ) -> httpx.Response:
        """Send until success, a final 4xx, or ``deadline()`` (monotonic time) passes.

        The deadline is a callable because it can change while we retry: it is unset
        (retry forever) during the run and set when the worker starts its final flush.
        """
        backoff = Backoff()
        while True:
            try:
                return self._once(method, path, content)
            except _Retryable as exc:
                error = str(exc)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            delay = backoff.next_delay()
            limit = deadline()
            if limit is not None:
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    raise DeliveryTimeout(f"{method} {self.base}{path}: {error}")
                delay = min(delay, remaining)  # one last attempt right at the deadline
            # Log the 1st, 2nd, 4th, 8th... failure: visible, but no flood in a long outage.
            if backoff.attempt & (backoff.attempt - 1) == 0:
                self._log(
                    f"tether run-worker: {method} {self.base}{path} failed ({error}); "
                    f"retrying in {delay:.1f}s (attempt {backoff.attempt})"
                )
            time.sleep(delay)

    def _once(self, method: str, path: str, content: bytes | None) -> httpx.Response:
        response = self._http.request(method, self.base + path, content=content)
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {response.status_code}: {_detail(response)}")
        if response.status_code >= 400:
            raise ControlPlaneRejected(response.status_code, _detail(response))
        return response


class _Retryable(Exception):
    pass


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])[:500]
    except ValueError:
        pass
    return response.text[:500]


def _stderr(line: str) -> None:
    # The real stderr: sys.stderr may be a capturing writer while a step runs.
    print(line, file=sys.__stderr__ or sys.stderr, flush=True)
