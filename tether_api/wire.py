"""What every protocol of Tether shares: size limits, JSON-typed fields, and the body of
every error answer."""

import json
import re
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    Strict,
)

MAX_EVENTS_PER_BATCH = 5000


MAX_LOG_TAIL_LINES = 200


MAX_MESSAGE_CHARS = 64 * 1024


# Serialized JSON size caps: one request must not be able to make the server hold gigabytes.
MAX_RUN_CONFIG_BYTES = 256 * 1024


MAX_EVENT_DATA_BYTES = 256 * 1024


MAX_TAGS = 100


MAX_SEQ = 2**31 - 1  # per-run sequence numbers are 32-bit in storage


INT32 = 2**31 - 1


def strip_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a stray one in a log line must not block a run's events.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


T = TypeVar("T")


def _json_number(value: Any) -> Any:
    # JSON Schema's types, not Python's coercions: `false` is not 0 and "5" is not 5.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a number")
    return value


# Request fields take what their published JSON Schema type allows, no more: an integer is
# an int or an integral float (5.0), a number is an int or a float, a boolean is a bool. A
# client that sends another JSON type gets a 422 naming the field.
# (Constraints go before JSON_NUMBER in an Annotated, or the schema loses them.)
JSON_NUMBER = BeforeValidator(_json_number)


JsonInt = Annotated[int, JSON_NUMBER]


JsonFloat = Annotated[float, JSON_NUMBER]


JsonBool = Annotated[bool, Strict()]


_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _date_time_text(value: Any) -> Any:
    # pydantic would read a number, or a string of one, as Unix time; JSON Schema's
    # date-time is an RFC 3339 string.
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip())
    ):
        raise ValueError(
            "must be an ISO 8601 date-time with a time zone, e.g. 2026-01-01T00:00:00Z"
        )
    return value


# A date-time a client sends (a body field, a query parameter): text with a time zone.
JsonDateTime = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


# Free text from users' code or agents: NUL bytes replaced.
Text = Annotated[str, AfterValidator(strip_nul)]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")))


def check_json_size(value: T, limit: int, what: str) -> T:
    size = _json_size(value)
    if size > limit:
        raise ValueError(f"{what} is {size} bytes as JSON; the limit is {limit} bytes")
    return value


class FieldError(BaseModel):
    """One bad field of a request."""

    loc: list[str | int] = Field(
        description="Where: 'body', 'query', 'path' or 'header', then the field's path."
    )
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="A machine-readable kind, e.g. 'missing', 'string_too_long'.")


class TokenRefusalReason(StrEnum):
    """Why the control plane refused a request's token (the ``reason`` of its 401 answers)."""

    TOKEN_MISSING = "token_missing"
    TOKEN_UNKNOWN = "token_unknown"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_EXPIRED = "token_expired"


class ErrorResponse(BaseModel):
    """The body of every error answer (4xx) of the API."""

    detail: str = Field(description="What went wrong and how to fix it, in one line.")
    errors: list[FieldError] = Field(
        default_factory=list,
        description="Each bad field, for validation errors (422); empty otherwise.",
    )
    reason: TokenRefusalReason | None = Field(
        default=None,
        description="On a 401 from Tether itself, why the token was refused: token_missing, "
        "token_unknown, token_revoked or token_expired. Absent on other errors; a 401 "
        "without it came from something in front of the control plane (a proxy).",
    )
