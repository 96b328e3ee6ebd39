"""What several pages fetch: the deployment in the URL, quoted into API paths."""

from typing import Any
from urllib.parse import quote

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
