"""Command-line entry points of the SDK (argparse only: they run inside user images).

``tether code-server ...`` and ``tether run-worker ...`` forward here, as do
``python -m tether_sdk.code_server`` and ``python -m tether_sdk.run_worker``. Every flag
can also come from an environment variable, which is how the agent usually passes them.
"""

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from tether_api.enums import CodeLocationKind

# Shared by the code server and the run worker: the same code location, the same env
# (what tether_sdk.location.LocationTarget holds; the launchers set them from the spec).
TARGET_ENV = {
    "module": "TETHER_MODULE",
    "python_file": "TETHER_PYTHON_FILE",
    "working_directory": "TETHER_WORKING_DIRECTORY",
    "attribute": "TETHER_ATTRIBUTE",
    "kind": "TETHER_LOCATION_KIND",
}
# What a location's code is written with (no pydantic: tether_api.enums is the stdlib's).
KINDS = tuple(kind.value for kind in CodeLocationKind)


# The commands a user image runs (the launchers start them); the rest are the CLI's.
SDK_COMMANDS = ("code-server", "run-worker")


def main() -> None:
    """The ``tether`` command of the ``tether-sdk`` distribution: the SDK's two commands.
    Other commands are the full CLI's, which this install does not have."""
    argv = sys.argv[1:]
    if argv and argv[0] in SDK_COMMANDS:
        sys.exit(run_sdk_command(argv[0], argv[1:]))
    sys.stderr.write(
        "tether: this is the SDK install (tether-sdk), which has `tether code-server` and "
        "`tether run-worker` only; for the CLI, install 'tether[cli]' in another environment\n"
    )
    sys.exit(2)


def run_sdk_command(command: str, argv: list[str]) -> int:
    """``command``: one of SDK_COMMANDS."""
    return code_server_main(argv) if command == "code-server" else run_worker_main(argv)


def code_server_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tether code-server",
        description="Serve a code location's definitions (health, snapshot, validate) over HTTP.",
    )
    _add_target_args(parser)
    _arg(parser, "--host", "TETHER_CODE_SERVER_HOST", "interface to bind", default="127.0.0.1")
    _arg(
        parser,
        "--port",
        "TETHER_CODE_SERVER_PORT",
        "port (0: pick a free one)",
        default="4000",
        type=int,
    )
    _arg(parser, "--port-file", "TETHER_PORT_FILE", "write the bound port here once listening")
    _arg(
        parser,
        "--fork-socket",
        "TETHER_FORK_SOCKET",
        "serve warm run workers on this Unix socket (the process launcher sets it)",
    )
    args = parser.parse_args(argv)
    _check_target(parser, args)

    from tether_sdk.code_server import serve

    return serve(
        target=_target(args),
        host=args.host,
        port=args.port,
        port_file=args.port_file,
        fork_socket=args.fork_socket,
    )


def run_worker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tether run-worker",
        description="Execute one run and stream its events to the control plane.",
    )
    pooled = "--wait-for-run" in (argv if argv is not None else sys.argv[1:])
    parser.add_argument(
        "--wait-for-run",
        action="store_true",
        help="load the code, then wait for the run on stdin (a pooled container of the Docker "
        "launcher; run ID, control plane and token come with it)",
    )
    _arg(parser, "--run-id", "TETHER_RUN_ID", "the run to execute", required=not pooled)
    _arg(
        parser,
        "--control-plane",
        "TETHER_CONTROL_PLANE_URL",
        "control plane URL",
        required=not pooled,
    )
    _arg(parser, "--token", "TETHER_RUN_TOKEN", "the run's token", required=not pooled)
    _add_target_args(parser)
    _arg(
        parser,
        "--heartbeat-interval",
        "TETHER_HEARTBEAT_INTERVAL",
        "seconds between heartbeats",
        default="5",
        type=float,
    )
    _arg(
        parser,
        "--flush-timeout",
        "TETHER_FLUSH_TIMEOUT",
        "seconds to keep retrying event delivery at the end",
        default="300",
        type=float,
    )
    args = parser.parse_args(argv)
    _check_target(parser, args)
    if args.heartbeat_interval <= 0:
        parser.error("--heartbeat-interval must be positive")
    if args.wait_for_run:
        from tether_sdk.run_worker.pooled import wait_for_run

        return wait_for_run(
            _target(args),
            args.heartbeat_interval,
            args.flush_timeout,
        )

    from tether_sdk.run_worker.policy import LogPolicy
    from tether_sdk.run_worker.worker import WorkerOptions, run_worker

    return run_worker(
        WorkerOptions(
            run_id=args.run_id,
            control_plane_url=args.control_plane,
            token=args.token,
            target=_target(args),
            heartbeat_interval=args.heartbeat_interval,
            flush_timeout=args.flush_timeout,
            log_policy=LogPolicy.from_env(os.environ),
        )
    )


def _arg(
    parser: argparse.ArgumentParser,
    flag: str,
    env: str | None,
    help: str,
    *,
    default: str | None = None,
    type: Callable[[str], Any] = str,
    required: bool = False,
) -> None:
    value = (os.environ.get(env) if env else None) or default
    try:
        converted = type(value) if value is not None else None
    except ValueError:
        parser.error(f"{env}={value!r} is not a valid value for {flag}")
    parser.add_argument(
        flag,
        default=converted,
        type=type,
        # Required only when the environment does not supply it either.
        required=required and value is None,
        help=f"{help} (env {env}" + (f", default {default})" if default else ")"),
    )


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    # No env defaults here: _check_target applies them, so that a flag given on the
    # command line wins over the *other* target's env var instead of conflicting with it.
    parser.add_argument(
        "--module", help=f"module holding the Definitions (env {TARGET_ENV['module']})"
    )
    parser.add_argument(
        "--python-file",
        help=f"file holding the Definitions (env {TARGET_ENV['python_file']})",
    )
    _arg(
        parser,
        "--working-directory",
        TARGET_ENV["working_directory"],
        "directory to run in (also put first on sys.path)",
    )
    _arg(
        parser,
        "--attribute",
        TARGET_ENV["attribute"],
        "the module attribute holding the Definitions (Dagster: or a @definitions "
        "function), when the module has more than one",
    )
    _arg(
        parser,
        "--kind",
        TARGET_ENV["kind"],
        f"what the code is written with: {' or '.join(KINDS)}",
        default="tether",
    )


def _check_target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.module and args.python_file:
        parser.error("give only one of --module and --python-file")
    if not args.module and not args.python_file:
        args.module = os.environ.get(TARGET_ENV["module"]) or None
        args.python_file = os.environ.get(TARGET_ENV["python_file"]) or None
        if args.module and args.python_file:
            parser.error(f"set only one of {TARGET_ENV['module']} and {TARGET_ENV['python_file']}")
    if args.kind not in KINDS:
        parser.error(f"--kind must be one of {', '.join(KINDS)}, not {args.kind!r}")
    if not args.module and not args.python_file:
        if args.kind == "dagster" and _has_pyproject(args.working_directory):
            return  # the project's pyproject.toml says where its definitions are
        parser.error(
            "give --module or --python-file (or TETHER_MODULE / TETHER_PYTHON_FILE)"
            + (
                "; a Dagster project may instead give --working-directory with a "
                "pyproject.toml that names its module ([tool.dagster] module_name)"
                if args.kind == "dagster"
                else ""
            )
        )


def _has_pyproject(working_directory: str | None) -> bool:
    return os.path.isfile(os.path.join(working_directory or os.getcwd(), "pyproject.toml"))


def _target(args: argparse.Namespace) -> Any:
    """The parsed flags as a ``tether_sdk.location.LocationTarget``."""
    from tether_api.enums import CodeLocationKind
    from tether_sdk.location import LocationTarget

    return LocationTarget(
        module=args.module,
        python_file=args.python_file,
        working_directory=args.working_directory,
        attribute=args.attribute,
        kind=CodeLocationKind(args.kind),
    )
