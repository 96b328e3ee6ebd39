"""The Docker launcher's warm pool: run containers started before their run.

A location whose container context sets ``warm_pool: N`` keeps N containers per code server
generation running ``tether run-worker --wait-for-run``: the image is started and the user's
code imported, and each waits on its stdin. A run takes one instead of creating and starting
a container, and another is started in its place in the background.

Identity is the container's name, as for every container of the launcher:

- idle: ``tether-pool-...`` (labels: kind ``run-worker-pool``, the location, its generation;
  workflow ID: the location's workflow, whose removal makes it an orphan);
- claimed: renamed, atomically, to ``tether-claim-<hash of the run's label>``. A rename that
  names the idle container by its idle name fails once another launch has claimed it, so two
  launches never share one;
- assigned: the run's env (its token among it) and the run are written to its stdin, then it
  is renamed to the run's container name, which is what ``find`` and adoption look for.

An agent that dies between claim and assignment leaves a ``tether-claim-`` container that no
run will find: the launch's retry starts another container (with a new token, which revokes
the old one's), and draining the pool removes it. Labels cannot change after creation, so a
claimed container keeps its pool labels: the launcher accepts a pool container as a run's
when its name is that run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from activities.launchers.base import LaunchError, LaunchSpec
from activities.launchers.docker_settings import (
    LABEL_DEPLOYMENT,
    LABEL_GENERATION,
    LABEL_KIND,
    LABEL_LOCATION,
    LABEL_MANAGED,
    LABEL_ORGANIZATION,
    LABEL_WORKFLOW_ID,
)
from tether_api.agent_api import PoolAssignment

if TYPE_CHECKING:
    from activities.launchers.docker import DockerLauncher

log = logging.getLogger("tether.agent.docker.pool")

POOL_KIND = "run-worker-pool"
IDLE_PREFIX = "tether-pool-"
CLAIM_PREFIX = "tether-claim-"
# What a pooled worker prints last once its code is imported (tether_sdk/run_worker/pooled.py).
WAITING = b"waiting for a run"
# How long after handing a container out its replacement starts.
REFILL_DELAY_SECONDS = 1.0


def pool_size(spec: LaunchSpec) -> int:
    context = spec.location.container
    return context.warm_pool if context is not None else 0


class WarmPool:
    """Fills, claims from and drains the pools of one Docker launcher. Thread-safe."""

    def __init__(self, launcher: DockerLauncher) -> None:
        self.launcher = launcher
        self._guard = threading.Lock()
        self._filling: dict[tuple[str, str, str, int], threading.Lock] = {}

    # ------------------------------------------------------------------ filling

    def fill_later(self, spec: LaunchSpec, delay: float = 0.0) -> None:
        """Top the pool of ``spec``'s location and generation up, in the background: a
        launch never waits for the pool."""
        if pool_size(spec) > 0 and spec.generation is not None:
            threading.Thread(target=self._fill_quietly, args=(spec, delay), daemon=True).start()

    def _fill_quietly(self, spec: LaunchSpec, delay: float) -> None:
        time.sleep(delay)
        try:
            self.fill(spec)
        except (LaunchError, DockerException) as exc:
            # The pool is an optimization: runs start cold meanwhile.
            log.warning("warm pool of %s not filled: %s", spec.location_name, exc)

    def fill(self, spec: LaunchSpec) -> int:
        """Start containers until the pool has its size; returns how many were started."""
        assert spec.generation is not None
        key = (spec.organization, spec.deployment, spec.location_name, spec.generation)
        with self._guard:
            lock = self._filling.setdefault(key, threading.Lock())
        with lock:  # one filler per pool: two would overshoot
            if not self._serving(*key):
                return 0  # its code server is stopped (drained): its code is old
            missing = pool_size(spec) - len(self.idle(*key))
            for _ in range(missing):
                self._start_one(spec)
            return max(missing, 0)

    def _serving(self, organization: str, deployment: str, location: str, generation: int) -> bool:
        """Whether a code server of this generation runs: a refill that comes after the drain
        of its generation must not start containers nobody drains again."""
        return bool(
            self.launcher.client.api.containers(
                filters={
                    "status": "running",
                    "label": _labels(organization, deployment, location, generation, "code-server"),
                }
            )
        )

    def _start_one(self, spec: LaunchSpec) -> None:
        launcher = self.launcher
        image = spec.location.image
        if not image:
            return
        slot = f"{spec.location_name}-{spec.generation}-{secrets.token_hex(4)}"
        name = f"{IDLE_PREFIX}{slot}"[:63]
        worker = spec.model_copy(update={"kind": "run-worker", "label": name, "run_id": None})
        options = launcher.container_options(worker, name, image)
        # Owned by the location's workflow: an orphan once the location is removed.
        options["labels"][LABEL_WORKFLOW_ID] = spec.label.split("#", 1)[0]
        options["labels"][LABEL_KIND] = POOL_KIND
        options["command"] = ["tether", "run-worker", "--wait-for-run"]
        options["stdin_open"] = True
        launcher.ensure_image(image)
        try:
            container = launcher.create_container(image, options)
            container.start()
        except APIError as exc:
            raise LaunchError(f"Docker could not start a pooled run container: {exc}") from exc

    # ------------------------------------------------------------------ taking one

    def idle(self, organization: str, deployment: str, location: str, generation: int) -> list[Any]:
        """The pool's waiting containers, as the engine lists them (running, idle name)."""
        listed = self.launcher.client.api.containers(
            filters={
                "status": "running",
                "label": _labels(organization, deployment, location, generation, POOL_KIND),
            }
        )
        # Oldest first: the newest may still be importing the code.
        idle = [c for c in listed if _name(c).startswith(IDLE_PREFIX)]
        return sorted(idle, key=lambda c: int(c.get("Created") or 0))

    def take(self, spec: LaunchSpec, run_name: str) -> Container | None:
        """A waiting container of the run's location and generation, given the run and
        renamed to ``run_name``; None when the pool has none (the run starts cold)."""
        if pool_size(spec) <= 0 or spec.generation is None or spec.run is None:
            return None
        if spec.image and spec.image != spec.location.image:
            return None  # another image than the pool's (tag tether/image)
        claim = f"{CLAIM_PREFIX}{hashlib.sha256(spec.label.encode()).hexdigest()[:24]}"
        key = (spec.organization, spec.deployment, spec.location_name, spec.generation)
        for candidate in self._ready_first(self.idle(*key)):
            try:
                # By its idle name: fails if another launch renamed (claimed) it first.
                self.launcher.client.api.rename(_name(candidate), claim)
            except NotFound:
                continue
            except APIError as exc:
                if exc.status_code == 409:
                    self._remove_quietly(claim)  # a stale claim of this run's: retry once
                    continue
                raise LaunchError(f"Docker could not claim a pooled container: {exc}") from exc
            taken = self._assign(candidate["Id"], spec, run_name)
            # Later: a container starting (an interpreter importing the code) would compete
            # for the CPU with the run that was just handed out.
            self.fill_later(spec, REFILL_DELAY_SECONDS)
            return taken
        return None

    def _ready_first(self, idle: list[Any]) -> list[Any]:
        """The oldest container whose code is imported already (it said so last) first, then
        the rest, oldest first (one still importing beats starting a container). Asks the
        engine only until it finds a ready one: this is on the run's launch path."""
        for i, candidate in enumerate(idle):
            try:
                last = self.launcher.client.api.logs(candidate["Id"], tail=1)
            except (APIError, NotFound):
                continue
            if WAITING in last:
                return [candidate, *idle[:i], *idle[i + 1 :]]
        return idle

    def _assign(self, container_id: str, spec: LaunchSpec, run_name: str) -> Container | None:
        assignment = PoolAssignment(env={**spec.env, "TETHER_LAUNCH": "pool"}, run=spec.run)
        try:
            sock = self.launcher.client.api.attach_socket(
                container_id, params={"stdin": 1, "stream": 1}
            )
            raw = getattr(sock, "_sock", sock)
            try:
                raw.sendall(assignment.model_dump_json().encode() + b"\n")
            finally:
                with contextlib.suppress(OSError):
                    sock.close()
            self.launcher.client.api.rename(container_id, run_name)
        except (APIError, OSError) as exc:
            # It may have died meanwhile: remove it; the run starts cold.
            log.warning(
                "pooled container %s could not take run %s: %s", container_id[:12], spec.run_id, exc
            )
            self._remove_quietly(container_id)
            return None
        return self.launcher.get(container_id)

    # ------------------------------------------------------------------ draining

    def drain(self, organization: str, deployment: str, location: str, generation: int) -> int:
        """Remove the generation's waiting (and stale claimed) containers: its code server
        is stopped (a redeploy or a removal). Containers running a run are left alone."""
        listed = self.launcher.client.api.containers(
            all=True,
            filters={"label": _labels(organization, deployment, location, generation, POOL_KIND)},
        )
        removed = 0
        for c in listed:
            if _name(c).startswith((IDLE_PREFIX, CLAIM_PREFIX)):
                self._remove_quietly(c["Id"])
                removed += 1
        return removed

    def _remove_quietly(self, name_or_id: str) -> None:
        with contextlib.suppress(NotFound, APIError):
            self.launcher.client.api.remove_container(name_or_id, force=True)


def _labels(
    organization: str, deployment: str, location: str, generation: int, kind: str
) -> list[str]:
    return [
        f"{LABEL_MANAGED}=true",
        f"{LABEL_KIND}={kind}",
        f"{LABEL_ORGANIZATION}={organization}",
        f"{LABEL_DEPLOYMENT}={deployment}",
        f"{LABEL_LOCATION}={location}",
        f"{LABEL_GENERATION}={generation}",
    ]


def _name(listed: dict[str, Any]) -> str:
    return str((listed.get("Names") or ["/"])[0].lstrip("/"))
