"""Errors the services raise; the API turns them into JSON ``ErrorResponse`` answers."""

from tether_api.wire import FieldError, TokenRefusalReason


class ApiError(Exception):
    status_code = 400
    # For a 401: why the token was refused (``ErrorResponse.reason``).
    reason: TokenRefusalReason | None = None

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class AgentTimeout(ApiError):
    """No agent answered in time a request a user call waits for (504)."""

    status_code = 504


class Invalid(ApiError):
    """A request the schema allows but the server cannot accept (422). Name the field with
    ``loc`` (e.g. ``("query", "cursor")``) so clients can show the error next to it, or give
    ``errors`` when several fields are wrong."""

    status_code = 422

    def __init__(
        self,
        detail: str,
        loc: tuple[str | int, ...] | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        if loc:
            errors = [FieldError(loc=list(loc), msg=detail, type="value_error"), *(errors or [])]
        super().__init__(detail, errors)
