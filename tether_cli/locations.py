"""``tether deploy``, ``redeploy``, ``locations``, ``remove``: code locations."""

import json
import re
import shlex
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from tether_api.configschema import fields as config_fields
from tether_api.enums import CodeLocationKind, CodeLocationStatus
from tether_api.locations import (
    CodeLocation,
    CodeLocationDeploy,
    CodeLocationPutResult,
    ContainerContext,
)
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_api.snapshot import DefinitionsSnapshot, JobSnapshot
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.declared import sensor_kind
from tether_cli.deploy_paths import resolve_deploy_paths
from tether_cli.render import (
    EXIT_TIMEOUT,
    CliError,
    JsonOption,
    UsageProblem,
    counted,
    err,
    errors,
    first_line,
    local_time,
    note,
    out,
    parse_pairs,
    print_field,
    print_json,
    print_table,
    seconds_text,
    styled_status,
    validation_message,
)
from tether_cli.watch import watch_and_redeploy, watched_folder

POLL_INTERVAL = 0.5
SETTLED = frozenset({CodeLocationStatus.RUNNING, CodeLocationStatus.ERROR})


class Launch(StrEnum):
    """How the process launcher starts a location's run workers (CodeLocationSpec.launch)."""

    COLD = "cold"
    WARM = "warm"


def _wait_option(envvar: str) -> Any:
    return typer.Option(
        "--wait/--no-wait",
        envvar=envvar,
        help="Wait until the location is RUNNING (exit 0) or ERROR (exit 1).",
    )


TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="TETHER_WAIT_TIMEOUT",
        min=0,
        help="Seconds to wait for RUNNING or ERROR; then exit 3.",
    ),
]


class WaitTimedOut(CliError):
    exit_code = EXIT_TIMEOUT

    def __init__(self, message: str, location: CodeLocation) -> None:
        super().__init__(message)
        self.location = location


class LocationFailed(CliError):
    def __init__(self, message: str, location: CodeLocation) -> None:
        super().__init__(message)
        self.location = location


def _jobs(location: CodeLocation) -> str:
    if location.snapshot is None:
        return "-"
    return str(len(location.snapshot.jobs))


def _job_count(location: CodeLocation) -> str:
    if location.snapshot is None:
        return "no definitions reported yet"
    return counted(len(location.snapshot.jobs), "job")


_SERVER_NUMBER = re.compile(r"#(\d+)\b")


def tail_title(location: CodeLocation) -> str:
    """The title over a location's log tail. Its lines name each code server ``#N``, which
    counts every server started for the location, restarts included, while the generation
    counts deploys: the title says so when a number shows."""
    title = "last lines of the code server's output"
    tail = location.error.log_tail if location.error else []
    numbers = [m.group(1) for line in tail for m in _SERVER_NUMBER.finditer(line)]
    if not numbers:
        return title
    return (
        f"{title} (generation {location.generation}; the '#{numbers[-1]}' in them counts the "
        f"code servers started for {location.name}, restarts included, not deploys)"
    )


def without_shown_lines(message: str, tail: list[str]) -> str:
    """``message`` without its further lines (a traceback) when the log tail printed above
    it holds them all already: the error is then printed once."""
    first, _, rest = message.partition("\n")
    shown = {line.rstrip() for line in tail}
    lines = [line.rstrip() for line in rest.splitlines() if line.strip()]
    return first if lines and all(line in shown for line in lines) else message


def wait_settled(
    client: TetherClient,
    name: str,
    generation: int,
    since: datetime | None,
    timeout: float,
) -> CodeLocation:
    """Poll until the location is RUNNING or ERROR for ``generation``.

    A deploy or redeploy bumps the generation but keeps the old status until the agent
    reports, so right after one a RUNNING may still be the previous server's. With ``since``
    (the location's ``updated_at`` in the deploy's answer) only a state written after it
    counts; the control plane drops reports about older generations without touching the
    location, so a later write is a report about this generation (or a newer one)."""
    deadline = time.monotonic() + timeout
    shown: CodeLocationStatus | None = None
    while True:
        location = client.get_location(name)
        if location.generation > generation:
            raise LocationFailed(
                f"{name} was deployed again (generation {location.generation}) while waiting "
                f"for generation {generation}; see `tether locations`",
                location,
            )
        fresh = is_fresh(location, since)
        if fresh and location.status != shown:
            shown = location.status
            note(f"{name}: {location.status.value}")
        if fresh and location.status in SETTLED:
            return location
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            state = location.status.value if fresh else f"{location.status.value} (not yet synced)"
            raise WaitTimedOut(
                f"timed out after {seconds_text(timeout)} waiting for {name} generation "
                f"{generation}; last status {state}"
                + (f"; {location.warning}" if location.warning else _agent_hint(client)),
                location,
            )
        time.sleep(min(POLL_INTERVAL, remaining))


def is_fresh(location: CodeLocation, since: datetime | None) -> bool:
    """Whether the location's state was written after ``since`` (a deploy's answer): before
    that, a RUNNING may still be the previous server's."""
    return since is None or location.updated_at > since


def is_settled(location: CodeLocation, since: datetime | None) -> bool:
    """RUNNING or ERROR, written after ``since``: the outcome of that deploy."""
    return is_fresh(location, since) and location.status in SETTLED


def _agent_hint(client: TetherClient) -> str:
    try:
        available = client.agents_available()
    except CliError:
        return ""
    if available:
        return ""
    return f"; no agent of deployment {client.connection.deployment!r} is available to sync it"


def _settle(
    client: TetherClient,
    name: str,
    location: CodeLocation,
    since: datetime | None,
    timeout: float,
    json_output: bool,
    changed: bool,
) -> None:
    """Wait, then report the outcome and exit 0 (RUNNING), 1 (ERROR) or 3 (timed out)."""
    try:
        final = wait_settled(client, name, location.generation, since, timeout)
    except (WaitTimedOut, LocationFailed) as exc:
        if json_output:
            print_json(CodeLocationPutResult(code_location=exc.location, changed=changed))
        raise
    if json_output:
        print_json(CodeLocationPutResult(code_location=final, changed=changed))
    if final.status == CodeLocationStatus.ERROR:
        error = final.error
        message = error.message if error else "the code server failed"
        if error and error.log_tail:
            note(f"--- {tail_title(final)} ---")
            for line in error.log_tail:
                err.print(escape(line), style="dim")
            message = without_shown_lines(message, error.log_tail)
        if not changed:
            message += f" (the spec is unchanged; `tether redeploy {name}` retries)"
        raise LocationFailed(f"{name} failed (generation {final.generation}): {message}", final)
    if not json_output:
        out.print(
            f"[green]{escape(name)} is RUNNING[/]: generation {final.generation}, "
            f"{_job_count(final)}"
        )


def deploy(
    name: Annotated[str, typer.Argument(help="Code location name.", show_default=False)],
    module: Annotated[
        str | None,
        typer.Option(
            "--module", "-m", envvar="TETHER_DEPLOY_MODULE", help="Module with the definitions."
        ),
    ] = None,
    python_file: Annotated[
        str | None,
        typer.Option(
            "--python-file",
            "-f",
            envvar="TETHER_DEPLOY_PYTHON_FILE",
            help="Python file with the definitions: relative to --working-directory when "
            "given, else to the current directory (sent as an absolute path, which must exist "
            "where the agent runs; with --image, a path in the image, sent as given).",
        ),
    ] = None,
    working_directory: Annotated[
        str | None,
        typer.Option(
            envvar="TETHER_DEPLOY_WORKING_DIRECTORY",
            help="Working directory of the code (process launcher); a relative one is "
            "taken from the current directory and sent absolute: it must exist where the "
            "agent runs.",
        ),
    ] = None,
    kind: Annotated[
        CodeLocationKind,
        typer.Option(
            envvar="TETHER_DEPLOY_KIND",
            help="What the code is written with: 'tether' (Tether's SDK) or 'dagster' (a "
            "Dagster project, run unchanged; with --working-directory alone, its "
            "pyproject.toml names the module).",
        ),
    ] = CodeLocationKind.TETHER,
    attribute: Annotated[
        str | None,
        typer.Option(
            "--attribute",
            "-a",
            envvar="TETHER_DEPLOY_ATTRIBUTE",
            help="The attribute holding the Definitions, when the module has several.",
        ),
    ] = None,
    python: Annotated[
        str | None,
        typer.Option(
            envvar="TETHER_DEPLOY_PYTHON", help="Python executable to run (process launcher)."
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(envvar="TETHER_DEPLOY_IMAGE", help="Container image (Docker launcher)."),
    ] = None,
    agent_queue: Annotated[
        str | None,
        typer.Option(
            envvar="TETHER_DEPLOY_AGENT_QUEUE",
            help="Agent queue whose agents serve it (`tether agent run --queue NAME`); "
            "default: the deployment's default queue.",
        ),
    ] = None,
    launch: Annotated[
        Launch,
        typer.Option(
            envvar="TETHER_DEPLOY_LAUNCH",
            help="Process launcher: 'warm' forks run workers from the code server (user code "
            "imported once per code server), 'cold' starts a new interpreter per run (and the "
            "code server forks nothing).",
        ),
    ] = Launch.WARM,
    env: Annotated[
        list[str],
        typer.Option(
            "--env",
            envvar="TETHER_DEPLOY_ENV",
            help="KEY=VALUE for the code's environment; repeatable. Stored as given: "
            "use --passthrough-env for secrets.",
        ),
    ] = [],  # noqa: B006 - Typer copies defaults
    passthrough_env: Annotated[
        list[str],
        typer.Option(
            "--passthrough-env",
            envvar="TETHER_DEPLOY_PASSTHROUGH_ENV",
            help="Variable the agent copies from its own environment; repeatable.",
        ),
    ] = [],  # noqa: B006
    command: Annotated[
        str | None,
        typer.Option(
            envvar="TETHER_DEPLOY_COMMAND",
            help='Code server command for custom images, e.g. "tether code-server -m m".',
        ),
    ] = None,
    container: Annotated[
        str | None,
        typer.Option(
            "--container-json",
            envvar="TETHER_DEPLOY_CONTAINER",
            help='Docker launcher: the container context as JSON, e.g. \'{"memory": "1g", '
            '"volumes": [{"source": "data", "target": "/data"}], "network": "etl"}\'.',
        ),
    ] = None,
    only_if_changed: Annotated[
        bool,
        typer.Option(
            "--only-if-changed",
            envvar="TETHER_DEPLOY_ONLY_IF_CHANGED",
            help="Do nothing when the spec is unchanged. By default an unchanged spec is "
            "redeployed, so the code is loaded anew (a directory's files may have changed).",
        ),
    ] = False,
    wait: Annotated[bool, _wait_option("TETHER_DEPLOY_WAIT")] = True,
    timeout: TimeoutOption = 300.0,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            envvar="TETHER_DEPLOY_WATCH",
            help="Then redeploy whenever a file under the working directory (else the "
            "python file's folder) changes, on this machine, until Ctrl-C.",
        ),
    ] = False,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Create or update a code location, and wait until it runs. An unchanged spec is
    redeployed (new code server, code loaded anew) unless --only-if-changed; --watch
    redeploys it as its files change."""
    with errors():
        try:
            argv = shlex.split(command) if command is not None else None
        except ValueError as exc:
            raise UsageProblem(f"--command {command!r}: {exc}") from exc
        paths = resolve_deploy_paths(python_file, working_directory, image)
        try:
            spec = CodeLocationDeploy(
                kind=kind,
                attribute=attribute,
                module=module,
                python_file=paths.python_file,
                working_directory=paths.working_directory,
                python_executable=python,
                image=image,
                env=parse_pairs(env, "--env"),
                passthrough_env=passthrough_env,
                command=argv,
                container=_container_context(container),
                agent_queue=agent_queue,
                launch=launch.value,
            )
        except ValidationError as exc:
            raise UsageProblem(validation_message(exc)) from exc
        folder = watched_folder(paths, image) if watch else None
        for line in paths.notes:
            note(line)
        with TetherClient(Connection.resolve(url, token, deployment)) as client:
            result = client.put_location(name, spec)
            if not result.changed and not only_if_changed:
                # Same spec, maybe new code behind it (files, or an image tag pushed again).
                result = CodeLocationPutResult(
                    code_location=client.redeploy_location(name), changed=True
                )
            try:
                _deployed(client, name, result, wait, timeout, json_output)
            except CliError as exc:
                if folder is None:
                    raise
                # Watching: the next change of the files may fix it.
                err.print(f"[red]error:[/] {escape(exc.message)}")
            if folder is not None:

                def again(location: CodeLocation) -> None:
                    redone = CodeLocationPutResult(code_location=location, changed=True)
                    _deployed(client, name, redone, wait, timeout, json_output)

                watch_and_redeploy(client, name, folder, again)


def _deployed(
    client: TetherClient,
    name: str,
    result: CodeLocationPutResult,
    wait: bool,
    timeout: float,
    json_output: bool,
) -> None:
    """Say what a deploy did; with ``wait``, wait for its outcome (see _settle)."""
    location = result.code_location
    if not wait:
        if json_output:
            print_json(result)
        elif result.changed:
            out.print(
                f"{escape(name)}: generation {location.generation} deployed; "
                f"status {styled_status(location.status)} until an agent syncs it"
            )
        else:
            out.print(
                f"{escape(name)}: unchanged (generation {location.generation}, "
                f"{styled_status(location.status)})"
            )
        return
    if result.changed:
        note(
            f"{name}: generation {location.generation} deployed; waiting up to "
            f"{seconds_text(timeout)} for it to run"
        )
        since: datetime | None = location.updated_at
    else:
        note(f"{name}: spec unchanged (generation {location.generation})")
        since = None
    _settle(client, name, location, since, timeout, json_output, result.changed)


def _container_context(raw: str | None) -> ContainerContext | None:
    if raw is None:
        return None
    try:
        return ContainerContext.model_validate_json(raw)
    except ValidationError as exc:
        raise UsageProblem(f"--container-json: {validation_message(exc)}") from exc


def redeploy(
    name: Annotated[str, typer.Argument(help="Code location name.", show_default=False)],
    wait: Annotated[bool, _wait_option("TETHER_REDEPLOY_WAIT")] = False,
    timeout: TimeoutOption = 300.0,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Restart a code location's server with the same spec (e.g. to pick up new code)."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        location = client.redeploy_location(name)
        if not wait:
            if json_output:
                print_json(location)
            else:
                out.print(f"{escape(name)}: redeploy requested (generation {location.generation})")
            return
        note(f"{name}: redeploy requested (generation {location.generation}); waiting")
        _settle(client, name, location, location.updated_at, timeout, json_output, True)


app = typer.Typer(
    help="List code locations (the default), or show one in full.",
    invoke_without_command=True,
)


@app.callback()
def locations_main(
    ctx: typer.Context,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List code locations: status, generation, jobs, last error. `tether locations show
    NAME` shows one in full."""
    if ctx.invoked_subcommand is None:
        list_locations(json_output, url, token, deployment)


@app.command("list")
def list_locations(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List code locations: status, generation, jobs, last error."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_locations()
        if json_output:
            print_json(found)
            return
        if not found:
            note(
                f"no code locations in deployment {client.connection.deployment!r}; "
                "create one with `tether deploy NAME --module M`"
            )
            return
        table = Table("name", "status", "generation", "jobs", "updated", "error or warning")
        for loc in found:
            table.add_row(
                escape(loc.name),
                styled_status(loc.status),
                str(loc.generation),
                _jobs(loc),
                local_time(loc.updated_at),
                escape(first_line(loc.error.message if loc.error else loc.warning)),
            )
        print_table(table)


def remove(
    name: Annotated[str, typer.Argument(help="Code location name.", show_default=False)],
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Remove a code location: the agent stops its server."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        client.remove_location(name)
        out.print(f"{escape(name)}: removal requested; the agent stops its server")


@app.command("show")
def show_location(
    name: Annotated[str, typer.Argument(help="Code location name.", show_default=False)],
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Show a code location: status, what it runs, its error with the server's last log
    lines, its jobs (steps and config fields), assets and schedules."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        location = client.get_location(name)
    if json_output:
        print_json(location)
        return
    _print_location(location)


def _print_location(location: CodeLocation) -> None:
    spec = location.spec
    print_field("name", escape(location.name))
    print_field("status", styled_status(location.status))
    print_field("generation", str(location.generation))
    print_field("updated", local_time(location.updated_at))
    print_field(
        "kind", "Dagster project" if spec.kind == CodeLocationKind.DAGSTER else "Tether SDK"
    )
    if spec.image:
        print_field("image", escape(spec.image))
    if spec.working_directory:
        print_field("directory", escape(spec.working_directory))
    target = ("module", spec.module) if spec.module else ("python file", spec.python_file)
    if not spec.module and not spec.python_file and spec.kind == CodeLocationKind.DAGSTER:
        target = ("project", "its pyproject.toml names the module")
    print_field(target[0], escape(target[1] or "-"))
    if spec.attribute:
        print_field("attribute", escape(spec.attribute))
    print_field("agent queue", escape(spec.agent_queue or DEFAULT_AGENT_QUEUE))
    print_field("launch", spec.launch)
    if location.warning:
        print_field("warning", f"[yellow]{escape(location.warning)}[/]")
    if location.error:
        print_field("error", f"[red]{escape(location.error.message)}[/]")
        if location.error.log_tail:
            out.print(f"[bold]{escape(tail_title(location))}[/]")
            for line in location.error.log_tail:
                out.print(escape(line), style="dim")
    snapshot = location.snapshot
    if snapshot is None:
        note("no definitions reported yet: the jobs show once an agent has loaded the code")
        return
    for warning in snapshot.warnings:
        print_field("differently", f"[yellow]{escape(warning)}[/]")
    for job in snapshot.jobs:
        out.print()
        _print_job(job)
    _print_assets(snapshot)
    _print_schedules(snapshot)
    _print_sensors(snapshot)


def _print_job(job: JobSnapshot) -> None:
    title = f"[bold]job {escape(job.name)}[/]"
    out.print(f"{title}: {escape(job.description)}" if job.description else title)
    if job.tags:
        print_field("  tags", escape(", ".join(f"{k}={v}" for k, v in sorted(job.tags.items()))))
    steps = Table("step", "after", "asset", "description", title=f"{job.name}: steps")
    for s in job.steps:
        steps.add_row(
            escape(s.name),
            escape(", ".join(s.deps)),
            escape(s.asset_key or ""),
            escape(first_line(s.description)),
        )
    print_table(steps)
    if job.config_schema is None:
        out.print(f"[dim]{escape(job.name)} takes no config[/]")
        return
    fields = config_fields(job.config_schema)
    config = Table(
        "field", "type", "required", "default", "description", title=f"{job.name}: config"
    )
    for f in fields:
        config.add_row(
            escape(f.path),
            escape(f.type),
            "yes" if f.required else "",
            escape(json.dumps(f.default) if f.has_default else ""),
            escape(first_line(f.description)),
        )
    print_table(config)


def _print_assets(snapshot: DefinitionsSnapshot) -> None:
    if not snapshot.assets:
        return
    out.print()
    table = Table("asset", "group", "deps", "description", title="assets")
    for a in sorted(snapshot.assets, key=lambda a: (a.group, a.key)):
        table.add_row(
            escape(a.key),
            escape(a.group),
            escape(", ".join(a.deps)),
            escape(first_line(a.description)),
        )
    print_table(table)


def _print_schedules(snapshot: DefinitionsSnapshot) -> None:
    if not snapshot.schedules:
        return
    out.print()
    table = Table("schedule", "cron", "timezone", "job", "run config", title="schedules")
    for sc in snapshot.schedules:
        table.add_row(
            escape(sc.name),
            escape(sc.cron),
            escape(sc.timezone),
            escape(sc.job),
            escape(
                "(computed at each tick)"
                if sc.config_from_code
                else json.dumps(sc.run_config, sort_keys=True)
                if sc.run_config
                else ""
            ),
        )
    print_table(table)


def _print_sensors(snapshot: DefinitionsSnapshot) -> None:
    if not snapshot.sensors:
        return
    out.print()
    table = Table("sensor", "kind", "job", "interval", "timeout", title="sensors")
    for sn in snapshot.sensors:
        table.add_row(
            escape(sn.name),
            escape(sensor_kind(sn.kind, sn.monitored_status, sn.monitored_jobs)),
            escape(sn.job or "-"),
            seconds_text(sn.minimum_interval_seconds),
            seconds_text(sn.timeout_seconds),
        )
    print_table(table)
