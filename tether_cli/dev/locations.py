"""The code locations at startup: deploy the bundled example (unless ``--no-example``) and
wait until it runs, and restart the code servers of the others, which the last ``tether
dev`` stopped."""

from rich.markup import escape

from tether_cli.dev.controlplane import client
from tether_cli.dev.options import EXAMPLE_LOCATION, EXAMPLE_MODULE, DevError
from tether_cli.dev.printout import say
from tether_cli.dev.stack import Stack
from tether_cli.dev.state import Tokens

EXAMPLE_READY_SECONDS = 60.0


def deploy(stack: Stack, tokens: Tokens) -> None:
    """Deploy the example (unless told not to) and restart the code servers of the
    locations already there: the last `tether dev` stopped them. A redeploy brings them
    back at once, instead of after a failed health check and a restart backoff. The example
    not coming up is a warning: the stack itself is up."""
    from tether_api.enums import CodeLocationStatus as Status
    from tether_api.locations import CodeLocation, CodeLocationDeploy
    from tether_cli.locations import is_settled, tail_title, without_shown_lines
    from tether_cli.render import counted

    o = stack.options
    with client(o, tokens.user) as c:
        existing = c.list_locations()
        target: CodeLocation | None = None
        if o.example:
            spec = CodeLocationDeploy(module=EXAMPLE_MODULE)
            put = c.put_location(EXAMPLE_LOCATION, spec)
            # Unchanged (a restart): the status still shows the old server's RUNNING, so
            # a redeploy gives a new generation whose RUNNING we can wait for.
            target = put.code_location if put.changed else c.redeploy_location(EXAMPLE_LOCATION)
            say(
                f"deploying the example code location {EXAMPLE_LOCATION!r} "
                f"({EXAMPLE_MODULE}, generation {target.generation})",
                style="dim",
            )
        for location in existing:
            if location.name == EXAMPLE_LOCATION and o.example:
                continue
            if location.status in (Status.STOPPING, Status.STOPPED):
                continue
            c.redeploy_location(location.name)
            say(f"restarting code location {location.name!r}", style="dim")
        if target is None:
            return
        since = target.updated_at

        def settled() -> CodeLocation | None:
            location = c.get_location(EXAMPLE_LOCATION)
            return location if is_settled(location, since) else None

        try:
            final = stack.wait_for(
                f"code location {EXAMPLE_LOCATION!r}", EXAMPLE_READY_SECONDS, settled
            )
        except DevError as exc:
            # The stack itself is up: say so, and keep it running.
            log = escape(str(o.logs / "agent.log"))
            say(f"[yellow]warning:[/] {escape(exc.message)}; see {log}")
            return
    if final.status == Status.RUNNING:
        jobs = counted(len(final.snapshot.jobs) if final.snapshot else 0, "job")
        say(f"{EXAMPLE_LOCATION} is RUNNING ({jobs})", style="green")
        return
    error = final.error
    tail = error.log_tail if error else []
    message = error.message if error else "the code server failed"
    if tail:
        say(f"--- {escape(tail_title(final))} ---", style="dim")
        for line in tail:
            say(escape(line), style="dim")
        message = without_shown_lines(message, tail)
    say(f"[yellow]warning:[/] {EXAMPLE_LOCATION} is in ERROR: {escape(message)}")
