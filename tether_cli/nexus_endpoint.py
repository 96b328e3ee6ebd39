"""A Nexus endpoint for a deployment's service tether.v1.Runs, made with the `temporal` CLI
(`temporal operator nexus endpoint ...`): what `tether dev` does on its dev server and
`tether nexus endpoint create` does on a real cluster.

The `temporal` binary rather than the Python SDK's operator service: a short-lived process
holding a Temporal client can crash at exit (temporalio/sdk-python#300), and the command it
runs is the one an operator would type, printed beside it."""

import json
import re
import subprocess
from dataclasses import dataclass

from workflows.names import default_task_queue, nexus_task_queue

# Temporal's rule for endpoint names.
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]$")


class EndpointError(Exception):
    """The endpoint could not be made; the message says why and what to do."""


def default_endpoint_name(deployment: str) -> str:
    """``tether-{deployment}``, in the letters, digits and '-' an endpoint name allows."""
    return "tether-" + (re.sub(r"[^a-zA-Z0-9-]+", "-", deployment).strip("-") or "deployment")


def target_task_queue(organization: str, deployment: str, task_queue: str | None) -> str:
    """Where the deployment's agents host the service: ``task_queue`` is the agents'
    TETHER_TASK_QUEUE when they set one."""
    return nexus_task_queue(task_queue or default_task_queue(organization, deployment))


@dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: str
    task_queue: str

    def create_args(self) -> list[str]:
        return [
            "operator",
            "nexus",
            "endpoint",
            "create",
            "--name",
            self.name,
            "--target-namespace",
            self.namespace,
            "--target-task-queue",
            self.task_queue,
        ]


def current_target(binary: str, name: str, connection: list[str]) -> Endpoint | None:
    """The endpoint named ``name`` on the server, or None when there is none."""
    found = subprocess.run(
        [binary, "operator", "nexus", "endpoint", "get", "--name", name, "-o", "json", *connection],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if found.returncode != 0:
        if "not found" in found.stderr:
            return None
        raise EndpointError(f"cannot read Nexus endpoint {name!r}: {found.stderr.strip()}")
    worker = json.loads(found.stdout)["spec"]["target"].get("worker") or {}
    return Endpoint(name, worker.get("namespace", ""), worker.get("taskQueue", ""))


def ensure_endpoint(
    binary: str, wanted: Endpoint, connection: list[str], replace: bool = False
) -> bool:
    """Create the endpoint unless one with that name and target exists; True if created.
    One with another target is an error naming both, or (``replace``: `tether dev`, whose
    server is its own) deleted and made again."""
    existing = current_target(binary, wanted.name, connection)
    if existing == wanted:
        return False
    if existing is not None:
        if not replace:
            raise EndpointError(
                f"Nexus endpoint {wanted.name!r} already exists with target namespace "
                f"{existing.namespace!r}, task queue {existing.task_queue!r} (wanted "
                f"{wanted.namespace!r}, {wanted.task_queue!r}); give another name, or delete "
                f"it first: temporal operator nexus endpoint delete --name {wanted.name}"
            )
        _run(binary, ["operator", "nexus", "endpoint", "delete", "--name", wanted.name], connection)
    _run(binary, wanted.create_args(), connection)
    return True


def _run(binary: str, args: list[str], connection: list[str]) -> None:
    done = subprocess.run([binary, *args, *connection], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise EndpointError(
            f"`temporal {' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}"
        )
