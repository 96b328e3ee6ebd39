"""Signing in (a user token, or a one-time link) and out; the root page."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from tether_controlplane.ui import api
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import api_path
from tether_controlplane.ui.render import page, parse_time
from tether_controlplane.ui.session import (
    CrossSiteRefused,
    clear_cookie,
    require,
    require_post,
    safe_next,
    same_origin,
    set_cookie,
)

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    signed = require(request)
    deployments = await signed.api.get(api_path("deployments"))
    if len(deployments) == 1:
        return RedirectResponse(f"/d/{deployments[0]['name']}", status_code=303)
    return page(request, "deployments.html", signed, deployments=deployments)


@router.get("/sign-in")
async def sign_in_form(
    request: Request, next: str | None = None, signed_out: bool = False
) -> Response:
    notice = "You are signed out." if signed_out else None
    return page(request, "signin.html", None, next_path=safe_next(next), notice=notice)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=500)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    # Login CSRF: another site must not sign a browser in as someone else.
    if not same_origin(request):
        raise CrossSiteRefused()
    return await _start(request, token.strip(), safe_next(next), "that token was not accepted")


@router.get("/sign-in/link")
async def sign_in_link_form(request: Request, code: str = "") -> Response:
    """The one-time link ``tether dev`` and ``tether sign-in-link`` print. Opening it changes
    nothing: a link scanner that fetches it does not use it up, and another site cannot sign
    a browser in as someone else with it. The button POSTs the code."""
    return page(request, "signin_link.html", None, code=code)


@router.post("/sign-in/link")
async def sign_in_link(
    request: Request, code: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    if not same_origin(request):
        raise CrossSiteRefused()
    return await _start(request, code, "/", "this sign-in link is invalid, expired or used")


async def _start(request: Request, credential: str, next_path: str, refused: str) -> Response:
    try:
        created = await api.sign_in(request.app, credential)
    except ApiProblem as problem:
        message = refused if problem.status in (401, 403) else problem.detail
        return page(
            request,
            "signin.html",
            None,
            status_code=problem.status,
            problem=f"{message}: sign in with a user token, or ask for a new link "
            "(tether sign-in-link).",
            next_path=next_path,
        )
    response = RedirectResponse(next_path, status_code=303)
    expires = parse_time(created["expires_at"])
    assert expires is not None
    set_cookie(response, request, created["token"], expires)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    signed = await require_post(request)
    try:
        await signed.api.call("DELETE", api_path("sessions", "current"))
    except ApiProblem as problem:
        if problem.status != 401:  # already ended: signing out again is fine
            raise
    # A redirect, so that reloading the page does not post the form again.
    response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
    clear_cookie(response)
    return response
