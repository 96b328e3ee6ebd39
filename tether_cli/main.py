"""Entry point of the ``tether`` console command.

``code-server`` and ``run-worker`` run inside user images that have only the light SDK, so
they are dispatched before Typer (a ``cli`` extra) is imported.
"""

import sys

# tether_sdk.cli.SDK_COMMANDS, spelled here so that the CLI's other commands do not import
# the SDK (tests/cli/test_cli_entry.py checks that the two agree).
SDK_COMMANDS = ("code-server", "run-worker")


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in SDK_COMMANDS:
        from tether_sdk.cli import run_sdk_command

        sys.exit(run_sdk_command(argv[0], argv[1:]))
    try:
        from tether_cli.app import app
    except ImportError as exc:  # the light SDK install has no Typer
        sys.stderr.write(
            f"tether: {exc.name} is not installed; install the CLI with: pip install 'tether[cli]' "
            "(or 'tether[controlplane]' for the control plane)\n"
        )
        sys.exit(2)
    app()


if __name__ == "__main__":
    main()
