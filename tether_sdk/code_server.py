"""The code server: serves a code location's definitions over HTTP to the agent.

``GET /health``, ``GET /snapshot``, ``POST /validate`` (models in tether_api.codeserver) and
``POST /ticks`` (evaluate a sensor or a schedule's config function: tether_api.ticks).
The definitions are loaded once, before the port opens; a load error is served (with its
traceback) instead of crashing, so the agent can report it.
"""

import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tether_api.codeserver import (
    Health,
    LoadError,
    SnapshotResponse,
    ValidateRequest,
    ValidateResponse,
)
from tether_api.snapshot import DefinitionsSnapshot
from tether_api.ticks import TickError, TickRequest, TickResponse
from tether_sdk.forkserver import run_worker_target, start_in_child
from tether_sdk.location import LoadedLocation, LocationTarget, load_location
from tether_sdk.ticks import TickRunner

M = TypeVar("M", bound=BaseModel)
MAX_BODY_BYTES = 10 * 1024 * 1024
REQUEST_TIMEOUT_SECONDS = 30.0


class CodeServerState:
    """What the server answers from: the loaded location or the load error."""

    def __init__(self, loaded: LoadedLocation | LoadError) -> None:
        self.location: LoadedLocation | None = None
        self.load_error = loaded if isinstance(loaded, LoadError) else None
        snapshot = None
        if not isinstance(loaded, LoadError):
            try:
                # User models can fail here (a config type without a JSON schema, a schedule
                # config that does not serialize): that is a load error to serve, not a crash.
                snapshot = DefinitionsSnapshot.model_validate_json(
                    loaded.snapshot().model_dump_json()
                )
                self.location = loaded
            except Exception as exc:
                self.load_error = LoadError(
                    message=f"could not describe the definitions: {type(exc).__name__}: {exc}",
                    traceback="".join(traceback.format_exception(exc)),
                )
        self.ticks = TickRunner(self._evaluate_tick)
        # Encoded once: the snapshot never changes for the life of the process.
        self.snapshot_json = (
            SnapshotResponse(snapshot=snapshot, load_error=self.load_error)
            .model_dump_json()
            .encode()
        )

    def health(self) -> Health:
        return Health(pid=os.getpid(), loaded=self.location is not None, load_error=self.load_error)

    def _not_loaded(self) -> str:
        message = self.load_error.message if self.load_error else "definitions not loaded"
        return f"the code location failed to load: {message}"

    def _evaluate_tick(self, request: TickRequest) -> TickResponse:
        if self.location is None:
            return TickResponse(error=TickError(message=self._not_loaded()))
        return self.location.evaluate_tick(request)

    def validate(self, request: ValidateRequest) -> ValidateResponse:
        if self.location is None:
            return ValidateResponse(valid=False, message=self._not_loaded())
        return self.location.validate(request)


def make_handler(state: CodeServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "tether-code-server"
        # Headers and body are separate writes: without this, Nagle's algorithm and delayed
        # ACKs add ~40 ms to every answer on a kept-alive connection.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send_model(HTTPStatus.OK, state.health())
            elif self.path == "/snapshot":
                self._send(HTTPStatus.OK, state.snapshot_json)
            else:
                self._send_detail(HTTPStatus.NOT_FOUND, f"no such path: GET {self.path}")

        # A client that sends less than it announced must not hold a thread forever.
        timeout = REQUEST_TIMEOUT_SECONDS

        def do_POST(self) -> None:
            raw_length = self.headers.get("Content-Length") or "0"
            if not raw_length.isascii() or not raw_length.isdigit():
                self.close_connection = True
                self._send_detail(HTTPStatus.BAD_REQUEST, "invalid Content-Length header")
                return
            length = int(raw_length)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._send_detail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
                return
            body = self.rfile.read(length) if length > 0 else b""
            if self.path == "/validate":
                request = self._parse(ValidateRequest, body)
                if request is None:
                    return
                try:
                    self._send_model(HTTPStatus.OK, state.validate(request))
                except Exception as exc:  # user code (a validator) may raise anything
                    self._send_detail(
                        HTTPStatus.INTERNAL_SERVER_ERROR, f"validation failed: {exc!r}"
                    )
            elif self.path == "/ticks":
                tick = self._parse(TickRequest, body)
                if tick is not None:
                    # User code's failures are in the answer: this is always a 200.
                    self._send_model(HTTPStatus.OK, state.ticks.run(tick))
            else:
                self._send_detail(HTTPStatus.NOT_FOUND, f"no such path: POST {self.path}")

        def _parse(self, model: type[M], body: bytes) -> M | None:
            try:
                return model.model_validate_json(body)
            except ValidationError as exc:
                errors = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                    for e in exc.errors(include_url=False)
                )
                self._send_detail(HTTPStatus.BAD_REQUEST, f"invalid {model.__name__}: {errors}")
                return None

        def _send_model(self, status: HTTPStatus, model: BaseModel) -> None:
            self._send(status, model.model_dump_json().encode())

        def _send_detail(self, status: HTTPStatus, detail: str) -> None:
            self._send(status, json.dumps({"detail": detail}).encode())

        def _send(self, status: HTTPStatus, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per health check would drown the useful output

    return Handler


def write_port_file(path: str, port: int) -> None:
    """Write atomically, so a reader never sees an empty or partial file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, target)


def serve(
    *,
    target: LocationTarget,
    host: str,
    port: int,
    port_file: str | None,
    log: Callable[[str], None] | None = None,
    fork_socket: str | None = None,
) -> int:
    """Load the definitions, serve until SIGTERM/SIGINT, and return the exit code."""
    log = log or _stderr
    where = target.describe()
    loaded = load_location(target)
    if isinstance(loaded, LoadError):
        log(f"tether code-server: could not load {where}:\n{loaded.traceback.rstrip()}")
    state = CodeServerState(loaded)
    fork_pipe = None
    if fork_socket and state.location is not None:
        # Before the HTTP server's threads exist: a fork copies only the calling thread.
        fork_pid, fork_pipe = start_in_child(
            fork_socket, run_worker_target(state.location), state.location.warm_up
        )
        log(f"tether code-server: warm run workers from pid {fork_pid} on {fork_socket}")
    try:
        server = ThreadingHTTPServer((host, port), make_handler(state))
    except OSError as exc:
        log(f"tether code-server: cannot listen on {host}:{port}: {exc}")
        return 1
    server.daemon_threads = True
    bound_port = server.server_address[1]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    # Served from a thread: shutdown() must be called from another thread than the loop's.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="tether-code-server"
    )
    thread.start()
    if port_file:
        write_port_file(port_file, bound_port)
    status = "loaded" if state.location else "LOAD ERROR"
    log(
        f"tether code-server: serving {where} ({status}) on http://{host}:{bound_port} "
        f"(pid {os.getpid()})"
    )
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    if fork_pipe is not None:
        os.close(fork_pipe)  # the fork server exits when this end closes
    log("tether code-server: stopped")
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    from tether_sdk.cli import code_server_main

    sys.exit(code_server_main())
