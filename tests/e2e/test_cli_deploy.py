"""``tether deploy`` as a user types it, from their project's directory, against a real control
plane and a real agent (which runs elsewhere: from the repository): what they read when it
works, when the file holds no definitions, and when it raises."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent_support import AgentProcess
from tests.support import Tenant, interruptible, wait_until

PIPELINE = """
from tether_sdk import Definitions, StepContext, job, step


@step
def fetch(ctx: StepContext) -> int:
    return 1


defs = Definitions(jobs=[job("weather", steps=[fetch])])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "myproj"
    folder.mkdir()
    (folder / "pipeline.py").write_text(PIPELINE)
    (folder / "nodefs.py").write_text("VALUE = 1\n")
    (folder / "broken.py").write_text(
        "def load():\n    raise ValueError('no such table')\n\nload()\n"
    )
    return folder


def user_env(tenant: Tenant, cwd: Path) -> dict[str, str]:
    """The environment of a user of the tenant's deployment, nothing of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.update(
        TETHER_URL=tenant.cp.url,
        TETHER_TOKEN=tenant.user_token,
        TETHER_DEPLOYMENT=tenant.deployment,
        TETHER_HOME=str(cwd / ".tether"),
        NO_COLOR="1",
    )
    return env


def tether(tenant: Tenant, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = user_env(tenant, cwd)
    return subprocess.run(
        [sys.executable, "-m", "tether_cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_relative_file_is_the_one_in_the_current_directory(
    e2e_tenant: Tenant, agent: AgentProcess, project: Path
) -> None:
    assert Path.cwd() != project  # the agent runs from elsewhere
    r = tether(e2e_tenant, project, "deploy", "weather", "-f", "pipeline.py", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert f"--python-file pipeline.py is {project / 'pipeline.py'}" in r.stderr
    assert "weather is RUNNING: generation 1, 1 job\n" in r.stdout  # "1 job", not "1 jobs"
    shown = tether(e2e_tenant, project, "locations", "show", "weather")
    assert f"python file {project / 'pipeline.py'}" in shown.stdout

    # The same with the directory given as '.': the file is then relative to it.
    r = tether(e2e_tenant, project, "deploy", "wd", "-f", "pipeline.py", "--working-directory", ".")
    assert r.returncode == 0, r.stderr
    assert f"--working-directory . is {project}" in r.stderr
    shown = tether(e2e_tenant, project, "locations", "show", "wd").stdout
    assert f"directory   {project}\n" in shown and "python file pipeline.py\n" in shown


def test_a_missing_file_says_where_it_was_looked_for(
    e2e_tenant: Tenant, agent: AgentProcess, project: Path
) -> None:
    r = tether(e2e_tenant, project, "deploy", "gone", "-f", "missing.py", "--timeout", "60")
    assert r.returncode == 1, r.stdout + r.stderr
    path = project / "missing.py"
    assert f"{path} is not a file on this machine: the agent must find it" in r.stderr
    assert f"python file not found: {path} (looked for on the host" in r.stderr


def test_no_definitions_is_said_once(
    e2e_tenant: Tenant, agent: AgentProcess, project: Path
) -> None:
    r = tether(e2e_tenant, project, "deploy", "empty", "-f", "nodefs.py", "--timeout", "60")
    assert r.returncode == 1, r.stdout + r.stderr
    [error] = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith(
        f"error: empty failed (generation 1): could not load the definitions: no Definitions "
        f"found in {project / 'nodefs.py'}: add a module-level `defs = Definitions("
    ), r.stderr
    assert error.count("no Definitions found") == 1
    # The error's sentence is not repeated on the lines after it.
    assert r.stderr.rstrip().endswith(error), r.stderr


def test_a_failed_import_prints_its_traceback_once(
    e2e_tenant: Tenant, agent: AgentProcess, project: Path
) -> None:
    r = tether(e2e_tenant, project, "deploy", "broken", "-f", "broken.py", "--timeout", "60")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.count("Traceback (most recent call last)") == 1, r.stderr
    assert r.stderr.count("raise ValueError('no such table')") == 1, r.stderr
    # The error's own line comes last, its traceback left to the output above it.
    last = r.stderr.rstrip().splitlines()[-1]
    assert last.startswith(
        "error: broken failed (generation 1): could not load the definitions: ValueError: no "
        "such table"
    ), r.stderr
    # The code servers' numbers in the output are explained next to the generation.
    assert "--- last lines of the code server's output (generation 1; the '#" in r.stderr


def _location(tenant: Tenant, name: str) -> dict[str, object]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/code-locations/{name}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_deploy_watch_redeploys_on_a_change_until_ctrl_c(
    e2e_tenant: Tenant, agent: AgentProcess, project: Path
) -> None:
    """A saved change redeploys the location (a new generation, the new jobs); a broken
    save puts it in ERROR and the watch goes on; the fix brings it back; Ctrl-C ends it."""
    env = user_env(e2e_tenant, project)
    out = project.parent / "watch.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tether_cli.main", "deploy", "watched", "-f"),
                *("pipeline.py", "--working-directory", ".", "--watch", "--timeout", "60"),
            ],
            cwd=project,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=interruptible,
        )
    try:
        wait_until(lambda: "for changes; Ctrl-C stops" in out.read_text(), 60, 0.2, what="watching")
        first = _location(e2e_tenant, "watched")
        assert first["status"] == "RUNNING"

        (project / "pipeline.py").write_text(PIPELINE.replace('"weather"', '"forecast"'))

        def jobs() -> list[str]:
            found = _location(e2e_tenant, "watched")
            if found["status"] != "RUNNING" or found["generation"] == first["generation"]:
                return []
            return [j["name"] for j in found["snapshot"]["jobs"]]  # type: ignore[index]

        assert wait_until(jobs, 60, 0.2, what="the redeploy") == ["forecast"]
        assert "pipeline.py changed; redeploying watched" in out.read_text()

        (project / "pipeline.py").write_text("import no_such_module_here\n")
        wait_until(
            lambda: _location(e2e_tenant, "watched")["status"] == "ERROR", 60, 0.2, what="ERROR"
        )
        (project / "pipeline.py").write_text(PIPELINE)
        wait_until(
            lambda: _location(e2e_tenant, "watched")["status"] == "RUNNING", 60, 0.2, what="fixed"
        )
        assert proc.poll() is None, out.read_text()  # the failed load did not end the watch
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, out.read_text()
        assert "stopped watching" in out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
