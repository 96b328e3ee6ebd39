"""``tether codec-server``: Temporal's remote codec protocol over HTTP, so that the Temporal UI
and the ``temporal`` CLI can show encrypted payloads to the people allowed to read them.

``POST /decode`` and ``POST /encode`` take and return ``{"payloads": [...]}`` (the Payloads
protobuf as JSON). Every call needs the server's token: ``Authorization: Bearer <token>``
(the CLI's ``--codec-auth``), or, for the Temporal UI, which cannot add a header of its own,
as the first path segment of the endpoint (``http://host:port/<token>``). CORS answers only
the configured UI origins. Stdlib HTTP server: the agent's image needs nothing more.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from worker.codec import EncryptionCodec

log = logging.getLogger("tether.codec_server")
MAX_BODY_BYTES = 16 * 1024 * 1024


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        codec: EncryptionCodec,
        token: str,
        origins: Sequence[str] = (),
    ) -> None:
        if not token:
            raise ValueError("the codec server needs a token (TETHER_CODEC_SERVER_TOKEN)")
        self.codec = codec
        self.token = token
        self.origins = set(origins)
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # --- CORS -----------------------------------------------------------------------------

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin and origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Vary", "Origin")

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # --- encode / decode ------------------------------------------------------------------

    def do_POST(self) -> None:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        action = parts[-1] if parts else ""
        if action not in ("encode", "decode"):
            return self._answer(404, {"error": "POST /decode or /encode"})
        if not self._authorized(parts[:-1]):
            # Says what is missing, not whether a given token was close.
            log.warning("refused /%s from %s: no valid token", action, self.client_address[0])
            return self._answer(
                401, {"error": "a valid token is required: Authorization: Bearer <token>"}
            )
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return self._answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
        try:
            payloads = json_format.Parse(self.rfile.read(length), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return self._answer(400, {"error": f"not a Payloads JSON: {exc}"})
        codec = self.server.codec
        try:
            if action == "decode":
                done = codec.decrypt_all(payloads.payloads)
            else:
                done = codec.encrypt_all(payloads.payloads)
        except ValueError as exc:  # a key this server lacks, or a payload that was altered
            log.warning("cannot %s for %s: %s", action, self.client_address[0], exc)
            return self._answer(400, {"error": str(exc)})
        body = json_format.MessageToDict(Payloads(payloads=done))
        self._answer(200, body)

    def _authorized(self, prefix: list[str]) -> bool:
        expected = self.server.token.encode()
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), expected):
            return True
        # The Temporal UI's endpoint setting: http://host:port/<token>
        return any(hmac.compare_digest(p.encode(), expected) for p in prefix[:1])

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
