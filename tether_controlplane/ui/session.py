"""Who is signed in to the UI, and whether a state-changing request really came from a page of
ours.

The session's secret lives only in an HttpOnly, SameSite=Lax cookie. Every POST must also
carry the session's CSRF token (a hidden form field, or the X-CSRF-Token header htmx sends),
which a page on another site cannot read; a request whose Origin or Sec-Fetch-Site says it
came from another site is refused before that. SameSite=Lax (not Strict) keeps links to a run
page from an e-mail or chat working: GETs change nothing."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from fastapi import Request, Response

from tether_controlplane.settings import Settings
from tether_controlplane.tokens import csrf_token, same_secret
from tether_controlplane.ui.api import Api

COOKIE = "tether_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass
class Signed:
    """The signed-in user of this request."""

    secret: str
    csrf: str
    api: Api


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CrossSiteRefused(Exception):
    """A state-changing request without proof that it came from one of our pages."""


def current(request: Request) -> Signed | None:
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    return Signed(secret=secret, csrf=csrf_token(secret), api=Api(request.app, secret))


def require(request: Request) -> Signed:
    signed = current(request)
    if signed is None:
        raise SignInRequired(local_path(request))
    return signed


def local_path(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def sign_in_url(next_path: str) -> str:
    return f"/sign-in?next={quote(next_path, safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Only paths on this site: never an open redirect to another one."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//"):
        return "/"
    return next_path


def same_origin(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Browsers send Origin with every POST; "null" is an opaque (sandboxed) page.
        return origin is None and request.headers.get("sec-fetch-site") in (None, "same-origin")
    return origin.rstrip("/") == str(request.base_url).rstrip("/")


async def require_post(request: Request) -> Signed:
    """The signed-in user of a state-changing request that came from one of our pages."""
    if not same_origin(request):
        raise CrossSiteRefused()
    signed = require(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not same_secret(sent, signed.csrf):
        raise CrossSiteRefused()
    return signed


def set_cookie(
    response: Response, request: Request, settings: Settings, secret: str, expires: datetime
) -> None:
    secure = settings.secure_cookies
    if secure is None:
        secure = request.url.scheme == "https"
    response.set_cookie(
        COOKIE,
        secret,
        expires=expires,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
