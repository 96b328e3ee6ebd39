"""docker-compose.yml, end to end, as its header (and the README) tells a user to run it: the
header's commands in order (less the image build: the session built the test images), on a
machine where `tether dev` saved its own connection first. The stack comes up from the test
images (Temporal, control plane, setup, agent with the Docker launcher, the example deployed),
the CLI runs the example's `etl` job to SUCCESS, and scripts/compose-down.sh removes
everything: no container, network or volume with the stack's project name or labels is left.

Each run has its own compose project, network and free loopback ports, so it never meets a
developer's stack. `TETHER_TEST_COMPOSE_LAUNCHER=process` runs the same check with the process
launcher (the code server then runs inside the agent's container, from the bundled module).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import REPO, client, free_port

if TYPE_CHECKING:
    from tests.docker.conftest import Images  # the `images` fixture's type

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        not os.environ.get("TETHER_TEST_DOCKER") and os.environ.get("CI") != "true",
        reason="Docker tests are off: set TETHER_TEST_DOCKER=1 with a Docker engine running "
        "(scripts/test.sh does both)",
    ),
]

COMPOSE_FILE = REPO / "docker-compose.yml"
LAUNCHER = os.environ.get("TETHER_TEST_COMPOSE_LAUNCHER", "docker")
# With the process launcher the code runs in the agent's image, where only the bundled
# module exists; the example image has it as `quickstart`.
MODULE = "quickstart" if LAUNCHER == "docker" else "tether_sdk.examples.quickstart"
# The run's config in the header's `tether runs launch`.
HEADER_SOURCE = "s3://b/o.csv"


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    pytest.fail(
        "neither docker-compose nor `docker compose` is installed: "
        "apt-get install docker-compose (scripts/setup-docker.sh does)"
    )


def _docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


class ComposeStack:
    """One compose project: up, calls, logs, and a tear-down that reports what it left."""

    def __init__(self, images: Images) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.project = self.network = f"tether-test-{suffix}"
        # Unique too: the agent names its containers after the organization, and a developer's
        # stack (organization `local`) may be running on the same engine. Short, as `local`
        # is: a container name is only resolvable on a network up to 63 characters.
        self.org = f"t{suffix}"
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.port, temporal_port, temporal_ui_port = sorted(ports)
        self.url = f"http://127.0.0.1:{self.port}"
        # Nothing from the caller's environment that the compose file reads may leak in.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TETHER_", "TEMPORAL_", "COMPOSE_"))
        }
        env.update(
            TETHER_IMAGE=images.tether,
            TETHER_EXAMPLE_IMAGE=images.example,
            TETHER_EXAMPLE_MODULE=MODULE,
            TETHER_LAUNCHER=LAUNCHER,
            TETHER_NETWORK=self.network,
            TETHER_ORG=self.org,
            TETHER_PORT=str(self.port),
            TEMPORAL_PORT=str(temporal_port),
            TEMPORAL_UI_PORT=str(temporal_ui_port),
        )
        self.env = env
        self.command = _compose_command()
        self.base = [*self.command, "-p", self.project, "-f", str(COMPOSE_FILE)]

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        done = subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(self.command)} {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def user_token(self) -> str:
        return self.compose(
            "exec", "-T", "controlplane", "cat", "/var/lib/tether/tokens/user.token"
        ).strip()

    def state(self, service: str) -> dict[str, Any] | None:
        """The Docker state of a service's container (with its RestartCount)."""
        ids = self.compose("ps", "-a", "-q", service).split()
        if not ids:
            return None
        fmt = '{"RestartCount": {{.RestartCount}}, "State": {{json .State}}}'
        found: dict[str, Any] = json.loads(_docker("inspect", "--format", fmt, ids[0]))
        return found

    def exit_code(self, service: str) -> int | None:
        """The exit code of a one-shot service's container; None while it runs."""
        found = self.state(service)
        if found is None or found["State"]["Running"]:
            return None
        return int(found["State"]["ExitCode"])

    def launched_containers(self) -> list[str]:
        """What the agent started: managed containers of this stack's organization, or on its
        network (each filter alone is enough; both, to be safe)."""
        found: set[str] = set()
        for where in (f"label=tether.organization={self.org}", f"network={self.network}"):
            found.update(
                _docker(
                    "ps", "-aq", "--filter", "label=tether.managed=true", "--filter", where
                ).split()
            )
        return sorted(found)

    def logs(self) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", "200", check=False, timeout=60)
        except Exception as exc:
            return f"(no logs: {exc})"

    def tear_down(self) -> list[str]:
        """Stop the agent (so it launches nothing more), remove what it launched, then the
        project with its volumes. Returns what is left over, or why tear-down failed."""
        problems: list[str] = []

        def attempt(what: str, action: Any) -> None:
            try:
                action()
            except Exception as exc:
                problems.append(f"{what}: {exc}")

        attempt("stop the agent", lambda: self.compose("stop", "agent", timeout=90))
        attempt("remove launched containers", self._remove_launched)
        attempt(
            "compose down",
            lambda: self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=180),
        )
        label = f"label=com.docker.compose.project={self.project}"
        attempt("list leftovers", lambda: problems.extend(self._leftovers(label)))
        return problems

    def _remove_launched(self) -> None:
        ids = self.launched_containers()
        if ids:
            _docker("rm", "-f", "-v", *ids, timeout=120)

    def _leftovers(self, label: str) -> list[str]:
        left = [f"container {c}" for c in _docker("ps", "-aq", "--filter", label).split()]
        left += [f"launched container {c}" for c in self.launched_containers()]
        left += [f"volume {v}" for v in _docker("volume", "ls", "-q", "--filter", label).split()]
        # Made by the agent (a Dagster location's storage): its labels name the organization.
        agents = f"label=tether.organization={self.org}"
        left += [f"volume {v}" for v in _docker("volume", "ls", "-q", "--filter", agents).split()]
        left += [f"network {n}" for n in _docker("network", "ls", "-q", "--filter", label).split()]
        networks = _docker("network", "ls", "--format", "{{.Name}}").split()
        left += [f"network {n}" for n in networks if n == self.network]
        return left


def header_commands() -> list[str]:
    """The usage lines of docker-compose.yml's header, in order, comments cut."""
    lines = COMPOSE_FILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Up, one run, and down"))
    commands: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            if commands:
                break
            continue
        command = line.removeprefix("#   ")
        # A comment starts at two spaces and a '#' (none of the commands has one).
        commands.append(command.split("  #", 1)[0].strip())
    return commands


def as_written(command: str, compose: list[str]) -> str:
    """The header's `docker-compose` is this machine's compose command."""
    return command.replace("docker-compose ", f"{' '.join(compose)} ")


# Bringing the stack up and down takes most of it; the waits inside fail first, with logs.
@pytest.mark.timeout(900)
def test_the_headers_commands_run_the_example_and_leave_nothing_behind(
    images: Images, tmp_path: Path
) -> None:
    for image in (images.tether, images.example):
        _docker("image", "inspect", image)  # fails naming it when it was not built
    commands = header_commands()
    assert commands[0] == "scripts/build-images.sh", commands
    assert commands[-1] == "scripts/compose-down.sh", commands
    stack = ComposeStack(images)
    # `tether dev` ran here before: its saved connection (another URL, deployment `dev`)
    # must not be what the commands use.
    home = tmp_path / "tether-home"
    home.mkdir()
    (home / "dev.json").write_text(
        json.dumps(
            {
                "url": f"http://127.0.0.1:{free_port()}",
                "organization": "local",
                "deployment": "dev",
                "user_token": "tether_user_from_tether_dev",
            }
        )
    )
    env = {
        **stack.env,
        "COMPOSE_PROJECT_NAME": stack.project,
        "COMPOSE_FILE": str(COMPOSE_FILE),
        "TETHER_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def run(lines: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        script = "set -euo pipefail\n" + "\n".join(as_written(c, stack.command) for c in lines)
        return subprocess.run(
            ["bash", "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    try:
        started = time.monotonic()
        up = run(commands[1:-1], timeout=600)
        assert up.returncode == 0, f"exit {up.returncode}:\n{up.stdout}\n{up.stderr}"
        assert "SUCCESS" in up.stdout, up.stdout
        assert f"from {HEADER_SOURCE}" in up.stdout, up.stdout  # the step's own log line
        _check_the_stack(stack)
        print(f"{stack.project}: up and a run to SUCCESS in {time.monotonic() - started:.1f}s")

        down = run(commands[-1:], timeout=300)
        assert down.returncode == 0, f"exit {down.returncode}:\n{down.stdout}\n{down.stderr}"
        assert "nothing of it is left" in down.stderr, down.stderr
        label = f"label=com.docker.compose.project={stack.project}"
        assert stack._leftovers(label) == []
    except BaseException:
        print(f"--- {stack.project} logs\n{stack.logs()}")
        raise
    finally:
        leftovers = stack.tear_down()
    assert not leftovers, f"{stack.project} left behind: {leftovers}"


def _check_the_stack(stack: ComposeStack) -> None:
    """What the commands made, through the REST API: the example RUNNING from its image
    (deployed by the one-shot, which exited 0) and the run's events."""
    token = stack.user_token()
    assert token.startswith("tether_user_"), token
    dep = "/api/v1/deployments/prod"
    with client(stack.url, token) as api:
        running = api.get(f"{dep}/code-locations/quickstart").json()
        assert running["status"] == "RUNNING", running
        assert running["spec"]["module"] == MODULE
        # Deployed once: the second one-shot (`run deploy-example`) only waited.
        assert running["generation"] == 1, running
        assert stack.exit_code("deploy-example") == 0
        [run] = api.get(f"{dep}/runs").json()["runs"]
        assert run["status"] == "SUCCESS", run
        events = api.get(f"{dep}/runs/{run['id']}/events", params={"limit": 1000}).json()
        types = [e["type"] for e in events["events"]]
        assert "RUN_SUCCESS" in types, types
    if LAUNCHER == "docker":
        # The code server ran in a container of the example image, on the stack's network.
        images_used = {
            _docker("inspect", "--format", "{{.Config.Image}}", c).strip()
            for c in stack.launched_containers()
        }
        assert stack.env["TETHER_EXAMPLE_IMAGE"] in images_used, images_used
