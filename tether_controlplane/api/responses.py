"""What the OpenAPI document declares beyond FastAPI's defaults: the error answers of each
operation, all with the one ``ErrorResponse`` body the server really sends."""

from typing import Any

from starlette.responses import StreamingResponse

from tether_api.wire import ErrorResponse

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


# The stream as it is: text, not one JSON object. (Before OpenAPI 3.2, a schema of an event
# stream can only describe the whole body; a generated client gets it as a string, and reads
# the same events as JSON from GET .../events, paged by `after`.)
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of server-sent events (text/event-stream, UTF-8), sent as "
        "they happen; the same events as JSON, paged, are at GET .../events?after=SEQ. One "
        "frame per run event, in seq order, each ending with a blank line:\n\n"
        "```\nid: <seq>\nevent: <event type, e.g. LOG or RUN_SUCCESS>\n"
        "data: <the RunEvent as one line of JSON>\n\n```\n\n"
        "then, once the run has finished and every event was sent, a last frame "
        '`event: end` with `data: {"last_seq": <seq>}`, and the stream closes. Lines '
        "starting with ':' are keep-alive comments (every 15 s without events). To resume, "
        "send the last `id` seen as the Last-Event-ID header (or as `after`).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **LOOKUP,
}
