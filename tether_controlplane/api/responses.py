"""What the OpenAPI document declares beyond FastAPI's defaults: the error answers of each
operation, all with the one ``ErrorResponse`` body the server really sends."""

from typing import Any

from starlette.responses import StreamingResponse

from tether_api.models import ErrorResponse

_DESCRIPTIONS = {
    400: "Malformed request, e.g. an invalid Content-Length header.",
    401: "Missing, unknown, revoked or expired token (only a revoked or expired token's own "
    "secret is told which, and when). `reason` says which: token_missing, token_unknown, "
    "token_revoked or token_expired; a 401 without it did not come from Tether (e.g. a proxy "
    "in front of it).",
    403: "A token of the wrong kind for this endpoint; `detail` names the kind needed.",
    404: "Not found, or not visible to this token (the same answer either way).",
    409: "Conflicts with the current state, e.g. the run already finished.",
    413: "Request body larger than the server's max_request_bytes.",
    422: "Invalid input; `errors` names each bad field.",
    504: "No agent of the deployment answered in time (e.g. none is running).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


# Every /api operation: the token is checked (401, 403), and bodies are limited (400, 413).
API_ERRORS = error_responses(400, 401, 403, 413)
# Operations that look something up and validate their input.
LOOKUP = error_responses(404, 422)
# ... and may conflict with the current state.
LOOKUP_OR_CONFLICT = error_responses(404, 409, 422)


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: one frame per run event (`id` is its seq, `event` "
        "its type, `data` the event as JSON), then `event: end` once the run has finished.",
        "content": {
            "text/event-stream": {
                # Before OpenAPI 3.2, an event stream's schema describes each event.
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "id": {"type": "string", "description": "The run event's seq."},
                        "event": {"type": "string", "description": "An event type, or 'end'."},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": "The RunEvent as JSON; for 'end', {last_seq}.",
                        },
                    },
                }
            }
        },
    },
    **LOOKUP,
}
