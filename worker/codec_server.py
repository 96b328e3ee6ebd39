"""``tether codec-server``: Temporal's remote codec protocol over HTTP, so that the Temporal UI
and the ``temporal`` CLI can show encrypted payloads to the people allowed to read them.

``POST /decode`` and ``POST /encode`` take and return ``{"payloads": [...]}`` (the Payloads
protobuf as JSON). Every call needs the server's token: ``Authorization: Bearer <token>``
(the CLI's ``--codec-auth``), or, for the Temporal UI, which cannot add a header of its own,
as the first path segment of the endpoint (``http://host:port/<token>``). CORS answers only
the configured UI origins.

A small Starlette app (``create_app``) served by uvicorn (``CodecServer``): uvicorn keeps a
keep-alive connection usable whatever the app did with the request's body (the Temporal UI
reuses its connections, so an answer sent before the body was read, a 401 or a 413, must not
leave that body to be parsed as the next request).
"""

from __future__ import annotations

import hmac
import logging
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType, TracebackType
from typing import Any, Literal

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from worker.codec import EncryptionCodec

log = logging.getLogger("tether.codec_server")
MAX_BODY_BYTES = 16 * 1024 * 1024
ACTIONS = ("encode", "decode")
ALLOW_METHODS = "POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, X-Namespace"
# How long a stopping server waits for calls in progress before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 5


class _BodyTooLarge(Exception):
    pass


class _NotPayloads(Exception):
    pass


def create_app(codec: EncryptionCodec, token: str, origins: Sequence[str] = ()) -> Starlette:
    """The codec protocol as an ASGI app: ``POST [/<token>]/decode`` and ``/encode``, their CORS
    preflights, and a JSON 404 for anything else."""
    if not token:
        raise ValueError("the codec server needs a token (TETHER_CODEC_SERVER_TOKEN)")
    expected = token.encode()
    allowed = frozenset(origins)

    def cors(request: Request) -> dict[str, str]:
        # Vary on every answer: a cache must not hand one origin's answer to another.
        headers = {"Vary": "Origin"}
        origin = request.headers.get("origin")
        if origin and origin in allowed:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def answer(request: Request, status: int, body: dict[str, Any]) -> Response:
        return JSONResponse(body, status_code=status, headers=cors(request))

    def authorized(request: Request, prefix: list[str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), expected):
            return True
        # The Temporal UI's endpoint setting: http://host:port/<token>
        return any(hmac.compare_digest(p.encode(), expected) for p in prefix[:1])

    async def endpoint(request: Request) -> Response:
        parts = [p for p in request.scope["path"].split("/") if p]
        action = parts[-1] if parts else ""
        if action not in ACTIONS or request.method not in ("POST", "OPTIONS"):
            return answer(request, 404, {"error": "POST /decode or /encode"})
        if request.method == "OPTIONS":
            # A browser's preflight carries no credentials: it is answered without the token.
            headers = {
                **cors(request),
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
            }
            return Response(status_code=204, headers=headers)
        client = request.client.host if request.client else "unknown"
        if not authorized(request, parts[:-1]):
            # Says what is missing, not whether a given token was close.
            log.warning("refused /%s from %s: no valid token", action, client)
            return answer(
                request,
                401,
                {"error": "a valid token is required: Authorization: Bearer <token>"},
            )
        try:
            body = await _read_body(request)
        except _BodyTooLarge:
            log.warning("refused /%s from %s: body over %d bytes", action, client, MAX_BODY_BYTES)
            return answer(request, 413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
        except ClientDisconnect:
            return Response(status_code=400)  # nobody left to read it
        try:
            # In a thread: parsing and AES over up to 16 MiB would hold up the other calls.
            done = await run_in_threadpool(_transcode, codec, action, body)
        except _NotPayloads as exc:
            return answer(request, 400, {"error": str(exc)})
        except ValueError as exc:  # a key this server lacks, or a payload that was altered
            # The codec's message names the key ID, never the payload.
            log.warning("cannot %s for %s: %s", action, client, exc)
            return answer(request, 400, {"error": str(exc)})
        return answer(request, 200, done)

    # One catch-all route: the token may be the first path segment, and every other path or
    # method gets the same JSON 404 (Starlette's routing would answer 405 or plain text).
    return Starlette(routes=[Route("/{path:path}", _EveryMethod(endpoint))])


class _EveryMethod:
    """An ASGI endpoint, which Starlette routes every method to (a function endpoint would get
    GET and HEAD only)."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)


async def _read_body(request: Request) -> bytes:
    """The body, refusing one over MAX_BODY_BYTES: by its Content-Length before reading any of
    it, and, for a chunked body, as soon as what came exceeds the bound."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _BodyTooLarge
    return bytes(body)


def _transcode(codec: EncryptionCodec, action: str, body: bytes) -> dict[str, Any]:
    try:
        payloads = json_format.Parse(body, Payloads())
    except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        raise _NotPayloads(f"not a Payloads JSON: {exc}") from exc
    if action == "decode":
        done = codec.decrypt_all(payloads.payloads)
    else:
        done = codec.encrypt_all(payloads.payloads)
    return json_format.MessageToDict(Payloads(payloads=done))


class CodecServer:
    """``create_app`` served by uvicorn on a socket bound here, so that a busy port fails at
    once (OSError) and ``port`` is the bound one (port 0 picks a free one).

    ``start()``/``stop()`` (or ``with``) serve from a background thread; ``serve()`` serves
    until SIGINT or SIGTERM, then stops gracefully. ``http``: uvicorn's HTTP implementation
    (``auto`` is httptools when installed, else h11)."""

    def __init__(
        self,
        codec: EncryptionCodec,
        token: str,
        origins: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 8081,
        *,
        http: Literal["auto", "h11", "httptools"] = "auto",
    ) -> None:
        self.app = create_app(codec, token, origins)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=http,
            lifespan="off",
            # The access log would write the Temporal UI's request paths, which hold the token.
            access_log=False,
            # Leave logging to the caller (the CLI's basicConfig); uvicorn's own start and
            # stop lines repeat what `tether codec-server` prints.
            log_config=None,
            log_level="warning",
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Serve from a background thread; return once it accepts connections."""
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="codec-server",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the codec server stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the codec server did not start within {timeout} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop accepting, let calls in progress finish (GRACEFUL_SHUTDOWN_SECONDS at most),
        close the connections and the socket."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._socket.close()  # uvicorn closes it too; closing twice is harmless

    def serve(self) -> None:
        """Serve until SIGINT (Ctrl-C) or SIGTERM, then stop gracefully and return. Call it from
        the main thread: that is where signals are delivered."""
        stopping = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            # A timeout, so that a server thread that died is noticed.
            while not stopping.wait(0.5):
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("the codec server stopped on its own")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> CodecServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
