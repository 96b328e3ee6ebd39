"""What a new user reads from the CLI: help that fits 80 columns, counts and durations said
properly, paths taken from where they type them, deployments they can list and create, a
retried run's first run. Real subprocesses against a real control plane; without an agent
(tests/e2e/test_cli_deploy.py deploys with one)."""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import typer.main
from typer._click.core import Command
from typer.testing import CliRunner

from tests.cli.test_user_cli import (  # noqa: F401 - cli: the fixture
    SNAPSHOT,
    Cli,
    _env,
    _location,
    _post_events,
    _report,
    cli,
)
from tests.support import REPO, Tenant, event, interruptible, wait_until
from tether_cli.app import app

# --- --help at 80 columns ------------------------------------------------------------------


def _commands(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    yield path, command
    # Typer's groups are its own click's: a group is what has subcommands.
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _envvars(command: Command) -> list[str]:
    names: list[str] = []
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            names.append(envvar)
        elif envvar:
            names.extend(envvar)
    return names


def _help(path: tuple[str, ...]) -> str:
    """``COLUMNS=80 tether PATH --help``, in this process: one subprocess per command would
    take half a minute (the real entry point is checked once below)."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, (path, result.output)
    return result.output


def test_help_at_80_columns_names_every_environment_variable_whole() -> None:
    # Every command of the Typer app, groups included; the SDK's two commands have their own
    # help (argparse) and no Typer options.
    found = [
        (path, names)
        for path, command in _commands(typer.main.get_command(app))
        if path[:1] not in (("code-server",), ("run-worker",)) and (names := _envvars(command))
    ]
    assert len(found) > 30  # every user command, the agent, the control plane, dev
    for path, names in found:
        _check_help(" ".join(path), _help(path), names)

    # The same through the console command, as a user runs it.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    real = subprocess.run(
        [sys.executable, "-m", "tether_cli.main", "deploy", "--help"],
        env={**env, "COLUMNS": "80"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    deploy = typer.main.get_command(app).commands["deploy"]  # type: ignore[attr-defined]
    _check_help("deploy", real.stdout, _envvars(deploy))


def _check_help(where: str, text: str, names: list[str]) -> None:
    assert "…" not in text, f"tether {where} --help cuts something:\n{text}"
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, f"tether {where} --help is wider than 80 columns: {too_wide}"
    words = set(re.findall(r"[A-Za-z0-9_]+", text))
    missing = [name for name in names if name not in words]
    assert not missing, f"tether {where} --help does not show {missing} whole:\n{text}"


# --- paths from the current directory ------------------------------------------------------


def _cli_in(tenant: Tenant, home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether_cli.main", *args],
        env=_env(tenant, home),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _spec(tenant: Tenant, name: str) -> dict[str, object]:
    with tenant.user() as c:
        return c.get(f"{tenant.dep_path}/code-locations/{name}").json()["spec"]  # type: ignore[no-any-return]


def test_deploy_sends_paths_from_the_current_directory(tenant: Tenant, tmp_path: Path) -> None:
    project = tmp_path / "myproj"
    (project / "src").mkdir(parents=True)
    (project / "pipeline.py").write_text("")
    (project / "src" / "jobs.py").write_text("")

    r = _cli_in(tenant, tmp_path, project, "deploy", "weather", "-f", "pipeline.py", "--no-wait")
    assert r.returncode == 0, r.stderr
    assert f"--python-file pipeline.py is {project / 'pipeline.py'}\n" in r.stderr
    assert _spec(tenant, "weather")["python_file"] == str(project / "pipeline.py")
    # A path that goes up is fine: it is resolved here, and sent without '..'.
    r = _cli_in(
        tenant, tmp_path, project / "src", "deploy", "up", "-f", "../pipeline.py", "--no-wait"
    )
    assert r.returncode == 0, r.stderr
    assert _spec(tenant, "up")["python_file"] == str(project / "pipeline.py")

    # '--working-directory .': the directory absolute, the file relative to it.
    r = _cli_in(
        tenant, tmp_path, project, "deploy", "wd", "--working-directory", ".", "-f", "src/jobs.py",
        "--no-wait",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"--working-directory . is {project}\n" in r.stderr
    spec = _spec(tenant, "wd")
    assert (spec["working_directory"], spec["python_file"]) == (str(project), "src/jobs.py")

    # A file not here is sent all the same (the agent may be elsewhere), with a word.
    r = _cli_in(tenant, tmp_path, project, "deploy", "far", "-f", "elsewhere.py", "--no-wait")
    assert r.returncode == 0, r.stderr
    assert (
        f"{project / 'elsewhere.py'} is not a file on this machine: the agent must find it at "
        "that path where it runs" in r.stderr
    )

    # With an image the paths are the image's: sent as given.
    r = _cli_in(
        tenant, tmp_path, project, "deploy", "img", "--image", "etl:1", "-f", "pipeline.py",
        "--no-wait",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _spec(tenant, "img")["python_file"] == "pipeline.py" and " is " not in r.stderr

    # The audit log records the file deployed, not "module: None".
    r = _cli_in(tenant, tmp_path, project, "audit", "--action", "location.deploy", "--json")
    details = {e["target"]: e["details"] for e in json.loads(r.stdout)}
    assert details["weather"] == {
        "generation": 1, "kind": "tether", "python_file": str(project / "pipeline.py"),
    }  # fmt: skip
    assert details["wd"] == {
        "generation": 1, "kind": "tether", "working_directory": str(project),
        "python_file": "src/jobs.py",
    }  # fmt: skip


# --- counts and durations ------------------------------------------------------------------


def test_one_job_and_durations_in_milliseconds(cli: Cli, tenant: Tenant) -> None:  # noqa: F811
    one_job = {**SNAPSHOT, "jobs": [j for j in SNAPSHOT["jobs"] if j["name"] == "etl"]}
    r = cli("deploy", "quick", "--module", "tether_sdk.examples.quickstart", "--no-wait")
    assert r.returncode == 0, r.stderr
    _report(tenant, "quick", status="RUNNING", snapshot=one_job, generation=1)
    r = cli("redeploy", "quick", "--wait", "--timeout", "0.2")
    assert r.returncode == 3 and "timed out after 200 ms waiting for quick" in r.stderr
    _report(tenant, "quick", status="RUNNING", snapshot=one_job, generation=2)
    r = cli("redeploy", "quick", "--no-wait")
    _report(tenant, "quick", status="RUNNING", snapshot=one_job, generation=3)
    shown = cli("locations")
    assert re.search(r"quick\s+│\s+RUNNING\s+│\s+3\s+│\s+1\s+│", shown.stdout), shown.stdout

    run_id = tenant.launch("quick", "etl", run_config={"source": "s3://b"})["id"]
    token = tenant.run_token(run_id)
    _post_events(tenant, run_id, token, event(1, "RUN_START"))
    _post_events(tenant, run_id, token, event(2, "RUN_SUCCESS", "done"))
    r = cli("runs", "logs", run_id, "--follow")
    assert r.returncode == 0, r.stderr
    last = r.stdout.rstrip().splitlines()[-1]
    assert re.fullmatch(rf"run {run_id} SUCCESS after \d+ ms", last), last


# --- deployments ---------------------------------------------------------------------------


def test_deployments_list_and_create(cli: Cli, tenant: Tenant) -> None:  # noqa: F811
    r = cli("deployments")
    assert r.returncode == 0, r.stderr
    rows = [[c.strip() for c in line.split("│")] for line in r.stdout.splitlines() if "│" in line]
    assert [row[1:4] for row in rows] == [["*", tenant.deployment, "10"]]

    r = cli("deployments", "create", "staging")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("created deployment staging\n")
    assert "--kind agent --deployment staging" in r.stderr  # what to do next
    again = cli("deployments", "create", "staging")
    assert again.returncode == 0 and "staging already exists; left as it is" in again.stdout

    listed = json.loads(cli("deployments", "list", "--json").stdout)
    assert [d["name"] for d in listed] == sorted([tenant.deployment, "staging"])
    r = cli("deployments", "list", TETHER_DEPLOYMENT="qa")
    assert "the commands use deployment 'qa', which does not exist" in r.stderr
    bad = cli("deployments", "create", "no/such")
    assert bad.returncode == 1 and "error:" in bad.stderr
    # The older name still works.
    assert cli("deployment", "show").stdout.startswith(f"deployment       {tenant.deployment}")


# --- a retried run -------------------------------------------------------------------------


def _fail(tenant: Tenant, run_id: str) -> None:
    _post_events(
        tenant,
        run_id,
        tenant.run_token(run_id),
        event(1, "RUN_START"),
        event(2, "RUN_FAILURE", "steps failed: load"),
    )


def _retry_of(tenant: Tenant, run_id: str) -> str:
    with tenant.user() as c:
        runs = c.get(f"{tenant.dep_path}/runs", params={"limit": 50}).json()["runs"]
    [retry] = [r["id"] for r in runs if r["parent_run_id"] == run_id]
    return str(retry)


def test_runs_show_of_a_retry_names_its_root_run(cli: Cli, tenant: Tenant) -> None:  # noqa: F811
    tenant.deploy("quick")
    _report(tenant, "quick", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    tags = {"tether/max_retries": "2", "tether/retry_on": "any"}
    first = tenant.launch("quick", "etl", run_config={"source": "s3://b"}, tags=tags)["id"]
    _fail(tenant, first)
    second = _retry_of(tenant, first)
    _fail(tenant, second)
    third = _retry_of(tenant, second)

    lines = cli("runs", "show", third).stdout.splitlines()
    assert f"attempt     3, retrying run {second}" in lines
    assert f"root run    {first}" in lines
    lines = cli("runs", "show", second).stdout.splitlines()
    assert f"attempt     2, retrying run {first}" in lines and f"root run    {first}" in lines
    assert not any(
        line.startswith("root run") for line in cli("runs", "show", first).stdout.splitlines()
    )


# --- deploy --watch ------------------------------------------------------------------------


WATCH = ("deploy", "w", "-f", "pipeline.py", "--watch", "--no-wait")


def test_deploy_watch_redeploys_when_a_file_changes(tenant: Tenant, tmp_path: Path) -> None:
    project = tmp_path / "myproj"
    project.mkdir()
    (project / "pipeline.py").write_text("VALUE = 1\n")
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tether_cli.main", *WATCH],
            env=_env(tenant, tmp_path),
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=interruptible,
        )
    try:
        wait_until(lambda: "watching " in errors.read_text(), timeout=30, what="the watch")
        assert f"watching {project} for changes; Ctrl-C stops" in errors.read_text()
        assert _location(tenant, "w")["generation"] == 1
        (project / "pipeline.py").write_text("VALUE = 2\n")
        wait_until(lambda: _location(tenant, "w")["generation"] == 2, timeout=30, what="a redeploy")
        assert "pipeline.py changed; redeploying w" in errors.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert errors.read_text().rstrip().endswith("stopped watching")

    # Nothing to watch: said before anything is deployed.
    r = _cli_in(tenant, tmp_path, project, "deploy", "m", "--module", "jobs", "--watch")
    assert r.returncode == 2
    assert "--watch needs --python-file or --working-directory" in r.stderr
