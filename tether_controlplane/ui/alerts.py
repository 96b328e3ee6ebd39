"""Alerts: the deployment's policies and the alerts they sent, with their delivery."""

import asyncio

from fastapi import APIRouter, Request, Response

from tether_api.alerts import AlertPolicy
from tether_api.channels import summary
from tether_controlplane.ui.common import api_path, deployment
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import require

router = APIRouter()


@router.get("/d/{dep}/alerts")
async def alerts_page(request: Request, dep: str) -> Response:
    signed = require(request)
    found, listed, sent = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path("deployments", dep, "alert-policies")),
        signed.api.get(api_path("deployments", dep, "alerts"), {"limit": 100}),
    )
    # Each with its channel's summary, as `tether alerts list` shows it (tether_api.channels).
    policies = [(p, summary(p.channel)) for p in map(AlertPolicy.model_validate, listed)]
    return page(
        request, "alerts.html", signed, dep=found, policies=policies, sent=sent, section="alerts"
    )
