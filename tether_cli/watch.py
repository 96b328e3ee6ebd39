"""``tether deploy --watch``: redeploy a location when its files change, until Ctrl-C.

The files watched are the location's on this machine: its working directory, else its python
file's folder. That is where the agent runs them only when it runs here (``tether dev``) or
shares the folder; the redeploy makes it load them anew either way.
"""

from collections.abc import Callable, Iterable
from pathlib import Path

from rich.markup import escape

from tether_api.locations import CodeLocation
from tether_cli.client import TetherClient
from tether_cli.deploy_paths import DeployPaths
from tether_cli.render import CliError, UsageProblem, err, note

# Editors write a file in several steps (a temporary file, a rename): one redeploy for them.
DEBOUNCE_MS = 400


def watched_folder(paths: DeployPaths, image: str | None) -> Path:
    """The folder whose changes redeploy the location, or why there is none to watch."""
    if image:
        raise UsageProblem(
            "--watch watches files on this machine; with --image they are in the image"
        )
    if paths.working_directory:
        folder = Path(paths.working_directory)
    elif paths.python_file:
        folder = Path(paths.python_file).parent
    else:
        raise UsageProblem(
            "--watch needs --python-file or --working-directory: a module's files are not "
            "known here"
        )
    if not folder.is_dir():
        raise UsageProblem(f"--watch: {folder} is not a directory on this machine")
    return folder


def _names(changes: Iterable[tuple[object, str]], folder: Path) -> str:
    found = sorted({Path(path).relative_to(folder).as_posix() for _, path in changes})
    shown = ", ".join(found[:5])
    return shown + (f" and {len(found) - 5} more" if len(found) > 5 else "")


def watch_and_redeploy(
    client: TetherClient,
    name: str,
    folder: Path,
    settle: Callable[[CodeLocation], None],
) -> None:
    """Redeploy ``name`` after each change under ``folder``, and ``settle`` the redeployed
    location (say how it went, waiting for it or not); a failed deploy is said and the watch
    goes on. Returns on Ctrl-C."""
    import watchfiles  # the CLI extra's; imported only by --watch

    note(f"watching {folder} for changes; Ctrl-C stops")
    try:
        for changes in watchfiles.watch(folder, debounce=DEBOUNCE_MS, raise_interrupt=True):
            note(f"{_names(changes, folder)} changed; redeploying {name}")
            try:
                settle(client.redeploy_location(name))
            except CliError as exc:  # a load error: fix the file, the next change retries
                err.print(f"[red]error:[/] {escape(exc.message)}")
            note(f"watching {folder} for changes; Ctrl-C stops")
    except KeyboardInterrupt:
        note("stopped watching")
