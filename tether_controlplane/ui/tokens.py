"""Tokens: the organization's user, agent and Nexus tokens; creating one (its secret shown once)
and revoking one.

The API lists tokens to a web session but creates and revokes them only for a user token:
a session must not make a credential that outlives it (``api/deps.py`` ``user_token``).
The page keeps that rule rather than going around it: creating or revoking asks for the
person's user token, sends that request (and only that one) with it as the bearer, and
keeps it nowhere. What the API refuses, the page refuses, with the API's reason."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse

from tether_controlplane.ui.api import Api, ApiProblem
from tether_controlplane.ui.common import api_path, deployment, utc_input
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import Signed, require, require_post

router = APIRouter()

TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Field = Annotated[str, Form(max_length=500)]
USER_TOKEN_HELP = (
    "Your user token (tether_user_…): creating and revoking tokens needs it, since a web "
    "session cannot make or end a credential that outlives it. It is used for this request "
    "only and not kept."
)
# The "For" choice of the create form: a user token, an agent token of every deployment,
# or (``agent:NAME``) of one deployment, or (``nexus:NAME``) a Nexus token of one deployment.
FOR_USER, FOR_ALL_DEPLOYMENTS, FOR_DEPLOYMENT = "user", "agent-organization", "agent:"
FOR_NEXUS = "nexus:"


class Refused(Exception):
    """What the typed user token cannot do, said for the person who typed it."""


async def _as_user_token(request: Request, signed: Signed, dep: str, typed: str) -> Api:
    """The API as the typed user token, once it is known to act for the signed-in
    organization; Refused says why not."""
    typed = typed.strip()
    if not typed:
        raise Refused(f"Your user token is missing. {USER_TOKEN_HELP}")
    as_user = Api(request.app, typed)
    mine, theirs = await asyncio.gather(
        deployment(signed, dep), _deployment_or_problem(as_user, dep)
    )
    if isinstance(theirs, ApiProblem):
        if theirs.status == 401:
            raise Refused(
                "That user token was not accepted (unknown, expired or revoked): paste the "
                "one you sign in with, or make one with `tether tokens create`."
            )
        if theirs.status == 404:
            raise Refused(
                f"That user token belongs to another organization than {mine['organization']}:"
                " paste one of this organization's user tokens."
            )
        raise Refused(theirs.detail)
    if theirs["organization"] != mine["organization"]:
        raise Refused(
            f"That user token belongs to organization {theirs['organization']}, not "
            f"{mine['organization']}: paste one of {mine['organization']}'s user tokens."
        )
    return as_user


async def _deployment_or_problem(api: Api, dep: str) -> dict[str, Any] | ApiProblem:
    try:
        found: dict[str, Any] = await api.get(api_path("deployments", dep))
    except ApiProblem as problem:
        return problem
    return found


def _said(problem: ApiProblem) -> str:
    """The API's refusal, each field error after it."""
    details = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', []) if p != 'body')}: {e.get('msg')}"
        for e in problem.errors
    )
    return f"{problem.detail}{f' ({details})' if details and details not in problem.detail else ''}"


async def _render(
    request: Request,
    signed: Signed,
    dep: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    found, listed, deployments = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path("tokens")),
        signed.api.get(api_path("deployments")),
    )
    context.setdefault("form", {})
    return page(
        request,
        "tokens.html",
        signed,
        status_code=status_code,
        dep=found,
        tokens=listed,
        deployments=deployments,
        user_token_help=USER_TOKEN_HELP,
        section="tokens",
        **context,
    )


@router.get("/d/{dep}/tokens")
async def tokens_page(request: Request, dep: str, revoked: int | None = None) -> Response:
    signed = require(request)
    return await _render(request, signed, dep, revoked=revoked)


def _new_token(for_: str, name: str, expires: str) -> dict[str, Any]:
    """The API's TokenCreate body from the form; ValueError says which field is wrong."""
    body: dict[str, Any] = {"name": name.strip()}
    if not body["name"]:
        raise ValueError("Name: give the token a name that says what it is for, e.g. ci")
    if for_ == FOR_USER:
        body["kind"] = "user"
    elif for_ == FOR_ALL_DEPLOYMENTS:
        body.update(kind="agent", scope="organization")
    elif for_.startswith(FOR_DEPLOYMENT) and for_ != FOR_DEPLOYMENT:
        body.update(kind="agent", deployment=for_.removeprefix(FOR_DEPLOYMENT))
    elif for_.startswith(FOR_NEXUS) and for_ != FOR_NEXUS:
        body.update(kind="nexus", deployment=for_.removeprefix(FOR_NEXUS))
    else:
        raise ValueError("For: choose a user, agent or Nexus token")
    until = utc_input("Expires", expires)
    if until is not None:
        body["expires_at"] = until.isoformat()
    return body


@router.post("/d/{dep}/tokens")
async def create_token(
    request: Request,
    dep: str,
    name: Field = "",
    for_: Annotated[str, Form(alias="for", max_length=100)] = FOR_USER,
    expires: Field = "",
    user_token: Field = "",
) -> Response:
    signed = await require_post(request)
    form = {"name": name, "for": for_, "expires": expires}  # never the user token
    try:
        body = _new_token(for_, name, expires)
        as_user = await _as_user_token(request, signed, dep, user_token)
        created = await as_user.post(api_path("tokens"), body)
    except (ValueError, Refused) as exc:
        return await _render(request, signed, dep, 422, problem=str(exc), form=form)
    except ApiProblem as problem:
        if problem.status >= 500:
            raise
        return await _render(
            request, signed, dep, problem.status, problem=_said(problem), form=form
        )
    # The secret is in this answer only (a POST's page, never stored by the browser:
    # Cache-Control no-store); reloading asks before posting again.
    return await _render(request, signed, dep, 201, created=created)


async def _token(signed: Signed, token_id: int) -> dict[str, Any]:
    listed = await signed.api.get(api_path("tokens"))
    found = next((t for t in listed if t["id"] == token_id), None)
    if found is None:
        raise ApiProblem(404, f"token {token_id} not found in your organization")
    return found


@router.get("/d/{dep}/tokens/{token_id}/revoke")
async def revoke_confirm(request: Request, dep: str, token_id: TokenId) -> Response:
    signed = require(request)
    found, token = await asyncio.gather(deployment(signed, dep), _token(signed, token_id))
    return page(
        request,
        "token_revoke.html",
        signed,
        dep=found,
        token=token,
        user_token_help=USER_TOKEN_HELP,
        section="tokens",
    )


@router.post("/d/{dep}/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, dep: str, token_id: TokenId, user_token: Field = ""
) -> Response:
    signed = await require_post(request)
    try:
        as_user = await _as_user_token(request, signed, dep, user_token)
        await as_user.post(api_path("tokens", str(token_id), "revoke"))
    except (Refused, ApiProblem) as exc:
        if isinstance(exc, ApiProblem) and exc.status >= 500:
            raise
        found, token = await asyncio.gather(deployment(signed, dep), _token(signed, token_id))
        return page(
            request,
            "token_revoke.html",
            signed,
            status_code=exc.status if isinstance(exc, ApiProblem) else 422,
            dep=found,
            token=token,
            problem=_said(exc) if isinstance(exc, ApiProblem) else str(exc),
            user_token_help=USER_TOKEN_HELP,
            section="tokens",
        )
    return RedirectResponse(f"/d/{dep}/tokens?revoked={token_id}", status_code=303)
