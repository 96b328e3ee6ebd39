"""docker-compose.yml, end to end: the stack comes up from the test images (Temporal, control
plane, setup, agent with the Docker launcher, the example deployed), runs the example's `etl`
job to SUCCESS through the REST API, and goes away without a trace.

Each run has its own compose project, network and free loopback ports, so it never meets a
developer's stack. `TETHER_TEST_COMPOSE_LAUNCHER=process` runs the same check with the process
launcher (the code server then runs inside the agent's container, from the bundled module).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import REPO, client, free_port, wait_until

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
SOURCE = "s3://bucket/orders.csv"


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
        networks = _docker("network", "ls", "--format", "{{.Name}}").split()
        left += [f"network {n}" for n in networks if n == self.network]
        return left


# Bringing the stack up and down takes most of it; the waits inside fail first, with logs.
@pytest.mark.timeout(900)
def test_compose_stack_deploys_and_runs_the_example(images: Images) -> None:
    for image in (images.tether, images.example):
        _docker("image", "inspect", image)  # fails naming it when it was not built
    stack = ComposeStack(images)
    try:
        _exercise(stack)
    except BaseException:
        print(f"--- {stack.project} logs\n{stack.logs()}")
        raise
    finally:
        leftovers = stack.tear_down()
    assert not leftovers, f"{stack.project} left behind: {leftovers}"


def _exercise(stack: ComposeStack) -> None:
    started = time.monotonic()
    stack.compose("up", "-d", timeout=300)
    token = stack.user_token()
    assert token.startswith("tether_user_"), token
    dep = "/api/v1/deployments/prod"

    with client(stack.url, token) as api:

        def location() -> dict[str, Any] | None:
            agent = stack.state("agent")
            if agent is not None and agent["RestartCount"] >= 3:
                raise AssertionError(
                    f"the agent keeps exiting (restarted {agent['RestartCount']} times): "
                    + stack.compose("logs", "--no-color", "--tail", "20", "agent", check=False)
                )
            body: dict[str, Any] = api.get(f"{dep}/code-locations/quickstart").json()
            if body.get("status") == "ERROR":
                raise AssertionError(f"quickstart failed to deploy: {json.dumps(body)[:3000]}")
            return body if body.get("status") == "RUNNING" else None

        running = wait_until(location, timeout=180, interval=1, what="quickstart RUNNING")
        assert running["spec"]["module"] == MODULE
        assert {j["name"] for j in running["snapshot"]["jobs"]} >= {"etl"}
        # The one-shot that deployed it waited for RUNNING and exited 0.
        assert wait_until(lambda: stack.exit_code("deploy-example") is not None, timeout=60)
        assert stack.exit_code("deploy-example") == 0
        deployed = time.monotonic()

        r = api.post(
            f"{dep}/runs",
            json={"code_location": "quickstart", "job": "etl", "run_config": {"source": SOURCE}},
        )
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]

        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = api.get(f"{dep}/runs/{run_id}").json()
            return run if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

        run = wait_until(finished, timeout=120, interval=0.5, what=f"run {run_id} to finish")
        events = api.get(f"{dep}/runs/{run_id}/events", params={"limit": 1000}).json()["events"]
        assert run["status"] == "SUCCESS", json.dumps(events)[-3000:]
        types = [e["type"] for e in events]
        assert "RUN_SUCCESS" in types, types
        assert any(SOURCE in (e.get("message") or "") for e in events), events

    if LAUNCHER == "docker":
        # The code server ran in a container of the example image, on the stack's network.
        images_used = {
            _docker("inspect", "--format", "{{.Config.Image}}", c).strip()
            for c in stack.launched_containers()
        }
        assert stack.env["TETHER_EXAMPLE_IMAGE"] in images_used, images_used
    print(
        f"{stack.project}: RUNNING after {deployed - started:.1f}s, "
        f"run SUCCESS after {time.monotonic() - deployed:.1f}s"
    )
