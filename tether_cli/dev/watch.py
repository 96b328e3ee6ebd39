"""``tether dev --watch``: redeploy a code location of the dev deployment when its files change.

Watched: each location whose code is in a folder on this machine (a working directory, else
its python file's folder), as the agent of ``tether dev`` runs it; not one in an image, nor
one named by a module only (its files are wherever Python finds them). Locations deployed or
removed while ``tether dev`` runs are picked up within ``REFRESH_SECONDS``. A change
redeploys every location whose folder holds the changed file; one that fails to load is in
ERROR until the next change fixes it, which the control plane and the web UI show.
"""

import threading
import time
from collections.abc import Iterable
from pathlib import Path

from rich.markup import escape

from tether_api.enums import CodeLocationStatus
from tether_api.locations import CodeLocation
from tether_cli.client import TetherClient
from tether_cli.dev.controlplane import client
from tether_cli.dev.printout import say
from tether_cli.dev.stack import Stack
from tether_cli.dev.state import Tokens
from tether_cli.locations import is_settled
from tether_cli.render import CliError, first_line
from tether_cli.watch import DEBOUNCE_MS

REFRESH_SECONDS = 5.0
SETTLE_SECONDS = 60.0


def local_folder(location: CodeLocation) -> Path | None:
    """The folder on this machine that holds ``location``'s code, or None when it has none
    (an image, a module only, a folder that is not here)."""
    spec = location.spec
    if spec.image:
        return None
    if spec.working_directory:
        folder = Path(spec.working_directory)
    elif spec.python_file and Path(spec.python_file).is_absolute():
        folder = Path(spec.python_file).parent
    else:
        return None
    return folder if folder.is_dir() else None


def watched(locations: Iterable[CodeLocation]) -> dict[Path, list[str]]:
    """Each folder to watch, with the locations whose code it holds."""
    found: dict[Path, list[str]] = {}
    for location in locations:
        folder = local_folder(location)
        if folder is not None:
            found.setdefault(folder.resolve(), []).append(location.name)
    return found


def to_redeploy(changed: Iterable[str], folders: dict[Path, list[str]]) -> list[str]:
    """The locations whose folder holds one of the ``changed`` paths, each once."""
    names: dict[str, None] = {}
    for path in changed:
        resolved = Path(path).resolve()
        for folder, located in folders.items():
            if resolved.is_relative_to(folder):
                names.update(dict.fromkeys(located))
    return list(names)


class DevWatcher:
    """Watches in a thread of its own until the stack stops."""

    def __init__(self, stack: Stack, tokens: Tokens) -> None:
        self.stack, self.tokens = stack, tokens
        self.thread = threading.Thread(target=self._run, name="tether-dev-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _locations(self) -> list[CodeLocation]:
        with client(self.stack.options, self.tokens.user) as c:
            return c.list_locations()

    def _run(self) -> None:
        import watchfiles  # the CLI extra's; imported only by --watch

        stop = self.stack.signals.stop
        shown: dict[Path, list[str]] | None = None
        while not stop.is_set():
            try:
                folders = watched(self._locations())
            except CliError as exc:
                say(f"[yellow]warning:[/] --watch: {escape(exc.message)}", style="dim")
                stop.wait(REFRESH_SECONDS)
                continue
            if folders != shown:
                listed = "; ".join(f"{', '.join(n)} in {f}" for f, n in folders.items())
                say(f"watching {escape(listed or 'no location with local files')}", style="dim")
                shown = folders
            if not folders:
                stop.wait(REFRESH_SECONDS)
                continue
            for changes in watchfiles.watch(
                *folders,
                debounce=DEBOUNCE_MS,
                stop_event=stop,
                rust_timeout=int(REFRESH_SECONDS * 1000),
                yield_on_timeout=True,
            ):
                if not changes:
                    break  # a timeout: read the locations again
                self._redeploy(to_redeploy((path for _, path in changes), folders))

    def _redeploy(self, names: list[str]) -> None:
        for name in names:
            try:
                with client(self.stack.options, self.tokens.user) as c:
                    location = c.redeploy_location(name)
                    say(
                        f"files of {name!r} changed: redeploying (generation "
                        f"{location.generation})",
                        style="dim",
                    )
                    self._report(c, location)
            except CliError as exc:
                say(f"[yellow]warning:[/] --watch: redeploying {name!r}: {escape(exc.message)}")

    def _report(self, c: TetherClient, location: CodeLocation) -> None:
        """How the redeploy went, once the location has settled (or SETTLE_SECONDS passed)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while not self.stack.signals.stop.is_set() and time.monotonic() < deadline:
            now = c.get_location(location.name)
            if is_settled(now, location.updated_at):
                if now.status == CodeLocationStatus.RUNNING:
                    say(f"{location.name} is RUNNING (generation {now.generation})", style="green")
                else:
                    message = now.error.message if now.error else "the code server failed"
                    first = first_line(message) or message
                    say(f"[yellow]warning:[/] {location.name} is in ERROR: {escape(first)}")
                return
            self.stack.signals.sleep(0.25)
