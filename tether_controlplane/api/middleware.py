"""Pure ASGI middleware that refuses requests before anything reads their bodies: without a
valid token (401), or with a body over the limit (413).

FastAPI's own ``max_body_size`` (0.165+) answers a declared oversize in plain text; these
answer JSON ``ErrorResponse`` bodies naming the fix, like every other error of the API."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from tether_api.tokens import DEPLOYMENT_HEADER
from tether_api.wire import ErrorResponse, TokenRefusalReason
from tether_controlplane.db import Database
from tether_controlplane.services import tenancy
from tether_controlplane.services.tenancy import Principal, Refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await self._refuse(send, 400, "invalid Content-Length header")
                return
            if int(length) > self.max_bytes:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            await self.app(scope, receive, send)
            return
        # A chunked body has no declared size: read it (up to the limit) and replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await self._refuse(
            send,
            413,
            f"request body larger than {self.max_bytes} bytes (max_request_bytes); "
            "send smaller batches",
        )

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        await refuse(send, status, detail, close=True)


async def refuse(
    send: Send,
    status: int,
    detail: str,
    *,
    close: bool = False,
    bearer: bool = False,
    reason: TokenRefusalReason | None = None,
) -> None:
    """Answer with an ``ErrorResponse`` body without reading the request. ``close`` when the
    unread body must not be taken for the next request on the connection; ``reason`` for a
    refused token (absent from the body otherwise)."""
    body = ErrorResponse(detail=detail, reason=reason).model_dump_json(exclude_none=True).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Where AuthMiddleware leaves the caller for the route's dependencies.
PRINCIPAL_SCOPE_KEY = "tether.principal"
MISSING_TOKEN = (
    "missing token: send 'Authorization: Bearer <token>' "
    "(create tokens with `tether controlplane bootstrap`)"
)
# The one answer for any secret that is not a token's: nothing tells whether it ever was.
INVALID_TOKEN = tenancy.INVALID_TOKEN
DEPLOYMENT_HEADER_KEY = DEPLOYMENT_HEADER.lower().encode()


def bearer_secret(header: str | None) -> str | None:
    scheme, _, secret = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def lookup_principal(
    db: Database, secret: str, deployment_name: str | None = None
) -> Principal | Refusal:
    with db.read() as session:
        return tenancy.identify(session, secret, deployment_name)


class AuthMiddleware:
    """Authenticate every request under ``prefix`` by its bearer token before its body is
    read, so that a caller without a valid token cannot make the server parse anything.
    Which kind of token an endpoint needs is still the route's dependencies' to check."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        header = next((v.decode("latin-1") for k, v in headers if k == b"authorization"), None)
        secret = bearer_secret(header)
        if secret is None:
            await refuse(
                send,
                401,
                MISSING_TOKEN,
                close=True,
                bearer=True,
                reason=TokenRefusalReason.TOKEN_MISSING,
            )
            return
        db: Database = scope["app"].state.db
        deployment = next(
            (v.decode("latin-1").strip() for k, v in headers if k == DEPLOYMENT_HEADER_KEY), None
        )
        principal = await run_in_threadpool(lookup_principal, db, secret, deployment or None)
        if isinstance(principal, Refusal):
            bearer = principal.status == 401
            await refuse(
                send,
                principal.status,
                principal.detail,
                close=True,
                bearer=bearer,
                reason=principal.reason,
            )
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)
