"""A minimal stand-in for the control plane's run-worker API, on a real local HTTP port.

Just enough to exercise the SDK's HTTP side (batching, retries, idempotent seq) without
the real control plane: it stores events by seq, like the real one, and can be told to
fail the next requests.
"""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandInControlPlane:
    def __init__(self, run_id: str = "run-1", job: str = "etl", token: str = "tok") -> None:
        self.run_id = run_id
        self.token = token
        self.run: dict[str, Any] = {
            "id": run_id,
            "deployment": "prod",
            "code_location": "quickstart",
            "job": job,
            "run_config": {},
            "tags": {},
            "status": "STARTING",
            "created_at": datetime.now(UTC).isoformat(),
        }
        self.events: dict[int, dict[str, Any]] = {}
        self.batches = 0
        self.fail_next = 0  # answer this many event posts with 503
        self.fail_status = 503
        self.cancel_requested = False
        self.heartbeats = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> "StandInControlPlane":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cp = self
        prefix = f"/api/v1/runs/{cp.run_id}"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: without this, Nagle's algorithm and delayed
            # ACKs add ~40 ms to every answer on a kept-alive connection.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {cp.token}":
                    self._reply(401, {"detail": "invalid run token"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path == prefix:
                    self._reply(200, cp.run)
                else:
                    self._reply(404, {"detail": "not found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self._authorized():
                    return
                if self.path == prefix + "/events":
                    with cp.lock:
                        if cp.fail_next:
                            cp.fail_next -= 1
                            self._reply(cp.fail_status, {"detail": "injected failure"})
                            return
                        events = json.loads(body)["events"]
                        accepted = 0
                        for e in events:
                            if e["seq"] not in cp.events:
                                cp.events[e["seq"]] = e
                                accepted += 1
                        cp.batches += 1
                    self._reply(
                        200,
                        {
                            "accepted": accepted,
                            "duplicates": len(events) - accepted,
                            "run_status": "STARTED",
                        },
                    )
                elif self.path == prefix + "/heartbeat":
                    cp.heartbeats += 1
                    self._reply(
                        200,
                        {"run_status": "STARTED", "cancel_requested": cp.cancel_requested},
                    )
                else:
                    self._reply(404, {"detail": "not found"})

        return Handler
