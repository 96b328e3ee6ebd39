"""``tether runs``: launch, list, show, logs, terminate."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, Field, ValidationError
from rich.markup import escape
from rich.table import Table

from tether_api.enums import TERMINAL_RUN_STATUSES, RunStatus, StepStatus
from tether_api.logs import LogForwarding
from tether_api.steps import RunError, StepSummary, run_errors, summarize_steps
from tether_api.user_api import Run, RunCreate
from tether_cli.client import MAX_PAGE_EVENTS, ApiError, TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.render import (
    EXIT_FAILED,
    JsonOption,
    UsageProblem,
    duration,
    errors,
    event_line,
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

app = typer.Typer(help="Launch, list, follow and terminate runs.", no_args_is_help=True)

RunIdArgument = Annotated[str, typer.Argument(help="Run ID.", show_default=False)]
FollowOption = Annotated[
    bool,
    typer.Option(
        "--follow",
        envvar="TETHER_FOLLOW",
        help="Stream events live until the run ends; exit 0 on SUCCESS, 1 otherwise.",
    ),
]
TagOption = Annotated[
    list[str],
    typer.Option("--tag", envvar="TETHER_RUN_TAGS", help="KEY=VALUE; repeatable."),
]


def _json_object(value: Any, source: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageProblem(
            f"{source}: the run config must be an object, not {type(value).__name__}"
        )
    return value


def load_config_file(path: Path) -> dict[str, Any]:
    """A run config from a .json file, or a .yaml/.yml one when PyYAML is installed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageProblem(f"cannot read {path}: {reason}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise UsageProblem(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml); or use a .json file"
            ) from exc
        try:
            return _json_object(yaml.safe_load(text), str(path))
        except yaml.YAMLError as exc:
            raise UsageProblem(f"{path}: invalid YAML: {exc}") from exc
    try:
        return _json_object(json.loads(text), str(path))
    except json.JSONDecodeError as exc:
        raise UsageProblem(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def _config_json(text: str) -> dict[str, Any]:
    try:
        return _json_object(json.loads(text), "--config-json")
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"--config-json: invalid JSON at column {exc.colno}: {exc.msg}") from exc


def follow(client: TetherClient, run_id: str, after: int = 0) -> None:
    """Print events live until the run ends, then its outcome; exit 0 only on SUCCESS."""
    for event in client.follow_events(run_id, after):
        typer.echo(event_line(event))
    run = client.get_run(run_id)
    outcome = f"run {escape(run.id)} {styled_status(run.status)}"
    if run.started_at:
        outcome += f" after {duration(run.started_at, run.ended_at)}"
    out.print(outcome)
    if run.status != RunStatus.SUCCESS:
        if run.status_message:
            note(run.status_message, style="")
        raise typer.Exit(EXIT_FAILED)


@app.command()
def launch(
    location: Annotated[str, typer.Argument(help="Code location.", show_default=False)],
    job: Annotated[str, typer.Argument(help="Job name.", show_default=False)],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="TETHER_RUN_CONFIG_FILE",
            help="Run config file: .json (or .yaml/.yml with PyYAML installed).",
            dir_okay=False,
        ),
    ] = None,
    config_json: Annotated[
        str | None,
        typer.Option(
            "--config-json",
            envvar="TETHER_RUN_CONFIG_JSON",
            help="Run config as JSON; its top-level keys override --config's.",
        ),
    ] = None,
    tag: TagOption = [],  # noqa: B006 - Typer copies defaults
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Launch at most one run with this key in the deployment: a script that "
            "runs this command again (after a timeout, a CI retry) gets the same run's ID.",
        ),
    ] = None,
    follow_run: FollowOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Launch a run and print its ID (alone on stdout: RUN=$(tether runs launch ...))."""
    with errors():
        run_config = load_config_file(config) if config is not None else {}
        if config_json is not None:
            run_config.update(_config_json(config_json))
        try:
            body = RunCreate(
                code_location=location,
                job=job,
                run_config=run_config,
                tags=parse_pairs(tag, "--tag"),
                idempotency_key=idempotency_key,
            )
        except ValidationError as exc:
            raise UsageProblem(validation_message(exc)) from exc
        with TetherClient(Connection.resolve(url, token, deployment)) as client:
            run = client.create_run(body)
            typer.echo(run.id)
            note(f"run {run.id}: {run.code_location}/{run.job} {run.status.value}")
            if follow_run:
                follow(client, run.id)


@app.command("list")
def list_runs(
    status: Annotated[
        list[RunStatus],
        typer.Option(
            "--status",
            envvar="TETHER_RUNS_STATUS",
            case_sensitive=False,
            help="Only runs in this status; repeatable.",
        ),
    ] = [],  # noqa: B006
    location: Annotated[
        str | None,
        typer.Option("--location", envvar="TETHER_RUNS_LOCATION", help="Only this code location."),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option("--job", envvar="TETHER_RUNS_JOB", help="Only runs of this job."),
    ] = None,
    tag: Annotated[
        list[str],
        typer.Option(
            "--tag", envvar="TETHER_RUNS_TAG", help="Only runs with tag KEY=VALUE; repeatable."
        ),
    ] = [],  # noqa: B006
    caller_workflow: Annotated[
        str | None,
        typer.Option(
            "--caller-workflow",
            envvar="TETHER_RUNS_CALLER_WORKFLOW",
            help="Only runs this Temporal workflow (its ID) started through Tether's Nexus "
            "service.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", envvar="TETHER_RUNS_LIMIT", min=1, help="At most N runs.")
    ] = 20,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List runs, newest first."""
    with errors():
        tags = parse_pairs(tag, "--tag")
        with TetherClient(Connection.resolve(url, token, deployment)) as client:
            found = client.list_runs(status, location, tags, limit, job, caller_workflow)
        if json_output:
            print_json(found)
            return
        if not found:
            note("no runs match")
            return
        table = Table("id", "location", "job", "status", "created", "duration")
        for run in found:
            table.add_row(
                run.id,
                escape(run.code_location),
                escape(run.job),
                styled_status(run.status),
                local_time(run.created_at),
                duration(run.started_at, run.ended_at),
            )
        print_table(table)


class RunDetail(BaseModel):
    """What ``tether runs show --json`` prints."""

    run: Run
    steps: list[StepSummary] = Field(description="Each step, from the run's events.")
    errors: list[RunError] = Field(description="Failure events, with their tracebacks.")


def _planned_steps(client: TetherClient, run: Run) -> list[str]:
    """The job's steps from its location's snapshot, for a run still going (steps it has
    not reached yet show as PENDING). A finished run shows what ran: the code may have
    changed since."""
    if run.status in TERMINAL_RUN_STATUSES:
        return []
    try:
        location = client.get_location(run.code_location)
    except ApiError:
        return []  # removed since: the events alone still tell what ran
    job = location.snapshot.job(run.job) if location.snapshot else None
    return [s.name for s in job.steps] if job else []


def _step_duration(step: StepSummary, run: Run) -> str:
    if step.duration_seconds is not None:
        return seconds_text(step.duration_seconds)
    if step.status == StepStatus.RUNNING and run.status not in TERMINAL_RUN_STATUSES:
        return duration(step.started_at, None)  # still going: up to now
    return "-"


def caller_text(run: Run) -> str:
    """Who started a run through Tether's Nexus service, as the web UI says it."""
    caller = run.caller
    if caller is None:
        return ""
    where = f"namespace {caller.namespace}"
    if caller.run_id:
        where += f", run {caller.run_id}"
    return f"Temporal workflow {caller.workflow_id} ({where})"


def _print_run(detail: RunDetail) -> None:
    run = detail.run
    status = styled_status(run.status)
    if run.exit_code is not None:
        status += f" (exit code {run.exit_code})"
    print_field("run", escape(run.id))
    print_field("status", status)
    print_field("location", escape(run.code_location))
    print_field("job", escape(run.job))
    if run.parent_run_id:
        print_field("attempt", f"{run.attempt}, retrying run {escape(run.parent_run_id)}")
        # The first run of the chain of retries (the parent, for a first retry).
        print_field("root run", escape(run.root_run_id or run.parent_run_id))
    if run.retry_run_id:
        print_field("retried as", escape(run.retry_run_id))
    if run.caller:
        print_field("started by", escape(caller_text(run)))
    if run.agent:
        print_field("agent", escape(run.agent))
    print_field("created", local_time(run.created_at))
    print_field("started", local_time(run.started_at))
    print_field("ended", local_time(run.ended_at))
    print_field("duration", duration(run.started_at, run.ended_at))
    tags = ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items()))
    print_field("tags", escape(tags or "-"))
    if run.status_message:
        print_field("message", escape(run.status_message))
    print_field("config", escape(json.dumps(run.run_config, indent=2, sort_keys=True)))

    out.print()
    if detail.steps:
        table = Table("step", "status", "started", "duration", "error", title="steps")
        for step in detail.steps:
            table.add_row(
                escape(step.name),
                styled_status(step.status),
                local_time(step.started_at),
                _step_duration(step, run),
                escape(step.error or ""),
            )
        print_table(table)
    else:
        note("no step has run")
    for error in detail.errors:
        out.print()
        where = f" (step {error.step})" if error.step and error.step not in error.message else ""
        out.print(f"[red bold]error:[/] {escape(error.message + where)}")
        if error.traceback:
            out.print(escape(error.traceback.rstrip()), style="dim")


@app.command()
def show(
    run_id: RunIdArgument,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Show a run: status, times, tags, config, each step's status and duration, and its
    errors with their tracebacks."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        run = client.get_run(run_id)
        events = client.all_events(run_id)
        planned = _planned_steps(client, run)
    detail = RunDetail(run=run, steps=summarize_steps(events, planned), errors=run_errors(events))
    if json_output:
        print_json(detail)
    else:
        _print_run(detail)


@app.command()
def logs(
    run_id: RunIdArgument,
    follow_run: FollowOption = False,
    after: Annotated[
        int,
        typer.Option(
            "--after", envvar="TETHER_RUNS_AFTER", min=0, help="Only events after this seq."
        ),
    ] = 0,
    wait_seconds: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0.1,
            max=60,
            help="Log forwarding 'local': how long to wait for the agent that keeps the output.",
        ),
    ] = 20.0,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Print a run's events (HH:MM:SS.mmm TYPE [LEVEL] [step] message, local time); then,
    when its log settings keep the output in your environment, where it is, or (forwarding
    'local') the output itself, fetched from the agent that keeps it (not stored)."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        if follow_run:
            follow(client, run_id, after)
            return
        printed = 0
        while True:
            page = client.events(run_id, after, MAX_PAGE_EVENTS)
            for event in page.events:
                typer.echo(event_line(event))
            printed += len(page.events)
            if len(page.events) < MAX_PAGE_EVENTS:
                break
            after = page.last_seq
        run = client.get_run(run_id)
        if not printed and after == 0 and run.status in TERMINAL_RUN_STATUSES:
            # It ended before its worker said anything (refused on its agent, its location
            # unable to load): the reason is the run's own message.
            reason = run.status_message or "no reason was recorded"
            note(f"run {run.id} ended {run.status.value} before any event: {reason}")
        settings = run.log_settings
        if settings is None or settings.forwarding == LogForwarding.ALL:
            return
        # Not forwarded: say where the text is, or fetch it from the agent that keeps it.
        kept = client.run_logs(run_id, wait_seconds)
    if kept.text is not None:
        note(f"--- output kept in your environment: {kept.message} ---")
        typer.echo(kept.text, nl=not kept.text.endswith("\n"))
        if kept.truncated:
            note("(only the latest part of the output was sent)")
    elif kept.url is not None:
        note(f"output kept in your environment, at {kept.url}")
    else:
        note(kept.message)


@app.command()
def terminate(
    run_id: RunIdArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Terminate a run: a queued one is CANCELED at once, a running one is CANCELING."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        run = client.terminate_run(run_id)
        out.print(f"run {escape(run.id)} {styled_status(run.status)}")
