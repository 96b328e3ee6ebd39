"""Who is signed in to the UI, and whether a state-changing request really came from a page of
ours.

The session's secret lives only in an HttpOnly, SameSite=Lax cookie. Every POST must also
carry the session's CSRF token (a hidden form field, or the X-CSRF-Token header htmx sends),
which a page on another site cannot read; a request whose Origin or Sec-Fetch-Site says it
came from another site is refused before that. SameSite=Lax (not Strict) keeps links to a run
page from an e-mail or chat working: GETs change nothing."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from fastapi import Request, Response

from tether_controlplane.settings import Settings
from tether_controlplane.token_secrets import csrf_token, same_secret
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
        raise SignInRequired(return_path(request))
    return signed


def return_path(request: Request) -> str:
    """Where to come back to after signing in: the page the person was on. For a live
    fragment (htmx) that is the page around it, and for a POST the page its form was on,
    never the fragment or the action itself."""
    if request.headers.get("hx-request"):
        return _path_of(request.headers.get("hx-current-url"))
    if request.method != "GET":
        return _path_of(request.headers.get("referer"))
    query = f"?{request.url.query}" if request.url.query else ""
    return safe_next(request.url.path + query)


def _path_of(url: str | None) -> str:
    if not url:
        return "/"
    parts = urlsplit(url)
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def sign_in_url(next_path: str) -> str:
    return f"/sign-in?next={quote(next_path, safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Only paths on this site: never an open redirect to another one (``//host``, and
    ``/\\host``, which browsers read the same way)."""
    if (
        not next_path
        or not next_path.startswith("/")
        or next_path[1:2] in ("/", "\\")
        or any(c == "\\" or ord(c) < 32 for c in next_path)
    ):
        return "/"
    return next_path


def same_origin(request: Request) -> bool:
    """Whether a request came from a page of this server. Its Origin's host and port must be
    those the browser addressed (the Host header), or those of ``public_url`` when a proxy
    in front rewrites Host; the scheme is not compared, since a TLS proxy hides it."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Browsers send Origin with every POST; "null" is an opaque (sandboxed) page.
        return origin is None and fetch_site in (None, "same-origin")
    host = urlsplit(origin).netloc.lower()
    allowed = {request.headers.get("host", "").lower()}
    public_url = settings_of(request).public_url
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return host in allowed


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


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def set_cookie(response: Response, request: Request, secret: str, expires: datetime) -> None:
    settings = settings_of(request)
    secure = settings.secure_cookies
    if secure is None:
        public = settings.public_url or ""
        secure = request.url.scheme == "https" or public.startswith("https://")
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
