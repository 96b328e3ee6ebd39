"""What several pages share: the deployment in the URL, quoted into API paths; date-time
fields read as UTC."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.session import Signed


def api_path(*parts: str) -> str:
    """An API path with each user-given part quoted, so that a name in a URL never becomes
    more path; "." and ".." (which URL resolution would still remove) are not names."""
    if any(p in ("", ".", "..") for p in parts):
        raise ApiProblem(status=404, detail="no such page")
    return "/api/v1/" + "/".join(quote(p, safe="") for p in parts)


async def deployment(signed: Signed, dep: str) -> dict[str, Any]:
    found: dict[str, Any] = await signed.api.get(api_path("deployments", dep))
    return found


def temporal_link(base: str | None, namespace: str, workflow_id: str) -> str | None:
    if not base:
        return None
    ns, wf = quote(namespace, safe=""), quote(workflow_id, safe="")
    return f"{base.rstrip('/')}/namespaces/{ns}/workflows/{wf}"


# The pages show every time in UTC; a date-time field (``<input type="datetime-local">``,
# which carries no zone) is read as UTC too.
UTC_INPUT_FORMAT = "YYYY-MM-DDTHH:MM, UTC"


def utc_window(
    after_label: str, after: str, before_label: str, before: str
) -> tuple[datetime | None, datetime | None]:
    """Two date-time fields bounding a time window, as aware UTC times; ValueError names a
    field that is no date and time, or a window that holds no time."""
    start, end = utc_input(after_label, after), utc_input(before_label, before)
    if start is not None and end is not None and start >= end:
        raise ValueError(
            f"{after_label} must be earlier than {before_label}: swap them, or clear one"
        )
    return start, end


def query_of(values: dict[str, str]) -> str:
    """A page's query string from its filters, leaving out the empty ones."""
    return urlencode({k: v for k, v in values.items() if v})


def utc_input(label: str, value: str) -> datetime | None:
    """A date-time field's value as an aware UTC time; None when empty. ValueError names
    the field and the format it wants."""
    text = value.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{label}: {text!r} is not a date and time; write it as {UTC_INPUT_FORMAT}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def refusal(problem: ApiProblem) -> tuple[str, list[str]]:
    """What a form shows when the API refuses it: the detail, and each field's message the
    detail does not already say. A refusal is a 404, 409 or 422; anything else is raised."""
    if problem.status not in (404, 409, 422):
        raise problem
    extra = [e["msg"] for e in problem.errors if e.get("msg") and e["msg"] not in problem.detail]
    return problem.detail, extra
