"""Mounts the web UI on the control plane: its pages, its static files, its error pages and
the security headers of every page."""

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether_controlplane.ui import (
    agents,
    alerts,
    assets,
    audit,
    automations,
    backfills,
    launchpad,
    locations,
    overview,
    runs,
    signin,
    tokens,
)
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.render import HERE, page
from tether_controlplane.ui.session import (
    CrossSiteRefused,
    SignInRequired,
    clear_cookie,
    current,
    return_path,
    sign_in_url,
)

# Only our own scripts and styles; no page may be framed (clickjacking) or post elsewhere.
# Inline styles stay allowed for the SVG graphs' and htmx's small <style> blocks.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def install(app: FastAPI) -> None:
    for module in (
        signin,
        overview,
        locations,
        runs,
        launchpad,
        assets,
        backfills,
        automations,
        alerts,
        agents,
        tokens,
        audit,
    ):
        app.include_router(module.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(SignInRequired, _sign_in_required)  # type: ignore[arg-type]
    app.add_exception_handler(CrossSiteRefused, _cross_site)  # type: ignore[arg-type]
    app.add_exception_handler(ApiProblem, _api_problem)  # type: ignore[arg-type]
    app.add_middleware(SecurityHeaders)


def wants_page(request: Request) -> bool:
    """A person's browser, outside the API: answer with a page rather than JSON."""
    path = request.url.path
    return not path.startswith(
        ("/api/", "/docs", "/openapi")
    ) and "text/html" in request.headers.get("accept", "")


def not_found(request: Request) -> Response:
    return page(
        request,
        "error.html",
        current(request),
        status_code=404,
        heading="Not found",
        message=f"There is no page at {request.url.path}.",
    )


def _redirect(request: Request, to: str) -> Response:
    if request.headers.get("hx-request"):
        # htmx follows this header with a full page load instead of swapping in a page.
        return Response(status_code=200, headers={"HX-Redirect": to})
    return RedirectResponse(to, status_code=303)


async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
    return _redirect(request, sign_in_url(exc.next_path))


async def _cross_site(request: Request, _: CrossSiteRefused) -> Response:
    return page(
        request,
        "error.html",
        current(request),
        status_code=403,
        heading="Request refused",
        message="This request did not come from a Tether page (cross-site request or missing "
        "CSRF token), so nothing was changed. Reload the page and try again.",
    )


async def _api_problem(request: Request, exc: ApiProblem) -> Response:
    if exc.status == 401:
        # The session expired, was ended, or its user token was revoked.
        response = _redirect(request, sign_in_url(return_path(request)))
        clear_cookie(response)
        return response
    headings = {403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid input"}
    return page(
        request,
        "error.html",
        current(request),
        status_code=exc.status if exc.status < 500 else 502,
        heading=headings.get(exc.status, "Something went wrong"),
        message=exc.detail,
        errors=exc.errors,
    )


class SecurityHeaders:
    """Pure ASGI (no buffering, unlike BaseHTTPMiddleware, so event streams stay streams):
    adds the page headers to every HTML answer outside /docs, whose Swagger page needs its
    own inline script."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/docs"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in PAGE_HEADERS.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
