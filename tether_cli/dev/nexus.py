"""The Nexus endpoint ``tether dev`` makes for its deployment's service tether.v1.Runs, which its
agent hosts with the Nexus token the bootstrap minted (tether_cli/nexus_endpoint.py)."""

import os

from rich.markup import escape

from tether_cli.dev.options import Options
from tether_cli.dev.printout import say
from tether_cli.dev.temporal import local_env, temporal_binary
from tether_cli.nexus_endpoint import (
    Endpoint,
    EndpointError,
    default_endpoint_name,
    ensure_endpoint,
    target_task_queue,
)


def make_endpoint(o: Options) -> str | None:
    """The endpoint's name, once it targets this deployment's agents; None (with a warning
    saying how to make it) when the Temporal server refused, e.g. one that is not ours."""
    env = local_env(os.environ) if o.own_temporal else dict(os.environ)
    wanted = Endpoint(
        default_endpoint_name(o.deployment),
        env.get("TEMPORAL_NAMESPACE") or "default",
        target_task_queue(o.org, o.deployment, None),
    )
    try:
        # Our own dev server's endpoint may point at a deployment of an earlier start.
        ensure_endpoint(
            temporal_binary(), wanted, ["--address", o.temporal], replace=o.own_temporal
        )
    except (EndpointError, OSError) as exc:
        say(
            f"[yellow]warning:[/] could not create the Nexus endpoint {escape(wanted.name)}: "
            f"{escape(str(exc))}; workflows cannot run jobs through Nexus until it exists "
            "(`tether nexus endpoint create`)"
        )
        return None
    return wanted.name
