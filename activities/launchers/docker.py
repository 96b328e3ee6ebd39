"""The Docker launcher: code servers and run workers as containers on a Docker engine, through
the Docker SDK for Python.

Every container is named and labelled from its launch label (the owning workflow's ID, plus
the deploy number for code servers), so ``start`` finds it again and adopts it: a retried
activity or a restarted agent never starts a second container. What a location may ask for
(networks, host mounts) is checked against the agent's ``DockerSettings`` before anything
starts; a location that asks for more fails with a ``LaunchError`` naming the setting.
"""

import hashlib
import logging
import math
import re
import socket
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from activities.launchers import launch_mode
from activities.launchers.base import (
    Handle,
    Inspection,
    Launcher,
    LaunchError,
    LaunchSpec,
    last_lines,
    target_env,
)
from activities.launchers.docker_pool import POOL_KIND, WarmPool
from activities.launchers.docker_settings import (
    CONTROL_PLANE_URL_ENV,
    DAGSTER_STORAGE_ENV,
    DAGSTER_STORAGE_TARGET,
    DAGSTER_VOLUME_PREFIX,
    HOST_NETWORK,
    LABEL_AGENT,
    LABEL_DEPLOYMENT,
    LABEL_GENERATION,
    LABEL_KIND,
    LABEL_LABEL,
    LABEL_LOCATION,
    LABEL_MANAGED,
    LABEL_ORGANIZATION,
    LABEL_PORT,
    LABEL_PREFIX,
    LABEL_RUN_ID,
    LABEL_WORKFLOW_ID,
    DockerSettings,
    dagster_volume,
    loopback_problem,
)
from tether_api.enums import CodeLocationKind
from tether_api.locations import ContainerContext

if TYPE_CHECKING:
    from temporalio.client import Client

    from worker.config import AgentConfig

log = logging.getLogger("tether.agent.docker")

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
# A container (not an image) exit code above this is 128 + the signal that ended it.
_SIGNAL_BASE = 128
_NOT_LISTED: Any = object()
# A run container whose control-plane URL it cannot reach (a loopback one off the host's
# network) shows it with its first failed call, a second or two after it starts: the launch
# watches its output this long for that line, then stops it (after this grace).
UNREACHABLE_WATCH_SECONDS = 15.0
UNREACHABLE_STOP_GRACE_SECONDS = 2


# Docker's embedded DNS resolves names of at most 63 characters (one DNS label): longer ones
# could not be reached by name on a shared network.
MAX_NAME = 63


def container_name(label: str) -> str:
    """Deterministic and unique per label: a readable part (the label's end, which names the
    location or run), and a hash of the whole label for uniqueness; at most 63 characters."""
    digest = hashlib.sha256(label.encode()).hexdigest()[:12]
    room = MAX_NAME - len("tether--") - len(digest)
    readable = _UNSAFE.sub("-", label).strip("-.")
    if len(readable) > room:  # keep the end, from a word's start
        cut = readable[-room:]
        readable = cut[cut.find("-") + 1 :] if "-" in cut else cut
    return f"tether-{readable.strip('-.')}-{digest}"


def running_in_container() -> bool:
    return Path("/.dockerenv").exists()


@dataclass(frozen=True)
class ManagedContainer:
    """A container this launcher started, as the engine lists it."""

    id: str
    name: str
    labels: dict[str, str]
    running: bool
    exit_code: int | None


class DockerLauncher(Launcher):
    """Launches containers on one Docker engine. Blocking; safe to call from threads."""

    name = "docker"
    orphan_kind = "orphaned containers"

    def __init__(self, settings: DockerSettings | None = None, agent_name: str = "") -> None:
        self.settings = settings or DockerSettings()
        self.agent_name = agent_name
        self._cache_lock = threading.Lock()
        self._cache: dict[str, str | None] = {}
        self._cache_at = -float("inf")
        self.pool = WarmPool(self)
        # Run containers the launch stopped because they could not reach the control plane:
        # container ID -> why, for inspect()'s account of their exit.
        self._unreachable: dict[str, str] = {}
        timeout = int(self.settings.api_timeout_seconds)
        try:
            if self.settings.docker_host:
                self.client = docker.DockerClient(
                    base_url=self.settings.docker_host, timeout=timeout
                )
            else:
                self.client = docker.from_env(timeout=timeout)
            self.client.ping()
            # An operator's own driver (journald, fluentd...) is left alone.
            self._log_driver = str(self.client.info().get("LoggingDriver") or "")
        except DockerException as exc:
            where = self.settings.docker_host or "DOCKER_HOST or the local socket"
            raise LaunchError(
                f"cannot reach the Docker engine ({where}): {exc}; start Docker, or mount its "
                "socket into the agent's container (-v /var/run/docker.sock:/var/run/docker.sock)"
            ) from exc

    @classmethod
    def from_config(cls, config: "AgentConfig") -> Self:
        launcher = cls(config.docker, agent_name=config.agent_name)
        url = config.worker_control_plane_url or config.control_plane_url
        problem = loopback_problem(url, config.docker.network)
        if problem is not None:
            # Said at start, not at the first run: the code servers work (the agent reaches
            # them through a published port), so nothing else would hint at it until a run.
            log.warning("run containers cannot reach the control plane at %s: %s", url, problem)
        return launcher

    # ------------------------------------------------------------------ capabilities

    @property
    def supports_warm_pool(self) -> bool:
        """``warm_pool: N`` in a location's container context: docker_pool.py."""
        return True

    @property
    def supports_orphan_reaping(self) -> bool:
        """The deployment's containers whose workflow ended or moved on are removed."""
        return True

    async def reap_orphans(
        self, temporal: "Client", organization: str, deployment: str, host_queue: str
    ) -> list[str]:
        """Remove the deployment's containers that no workflow owns any more
        (activities/orphans.py); a failed run's container stays with ``keep_failed_runs``."""
        # Imported here: orphans.py imports this module.
        from activities.orphans import remove_orphans

        return await remove_orphans(self, temporal, organization, deployment, host_queue)

    # ------------------------------------------------------------------ Launcher interface

    def start(self, spec: LaunchSpec) -> Handle:
        if not spec.label:
            raise LaunchError("the launch label is empty")
        name = container_name(spec.label)
        existing = self.get(name)
        if existing is not None and _is_for(existing, spec.label):
            if existing.status == "running":
                if spec.kind == "code-server":
                    self.pool.fill_later(spec)  # an adopted server: its pool may be short
                return self._handle(existing, adopted=True, label=spec.label)
            # Exited (or never started): its exit was already seen, or will be read from
            # the new one's watch; the label now belongs to a new start.
            self._remove(existing)
        if spec.kind == "run-worker":
            taken = self.pool.take(spec, name)
            if taken is not None:
                launch_mode.note("pool")
                self._stop_if_unreachable(spec, taken)
                return self._handle(taken, adopted=False, label=spec.label)
        image = spec.image or spec.location.image
        if not image:
            raise LaunchError(
                "the code location names no image: deploy it with --image REPO:TAG for the "
                "Docker launcher (or run the agent with --launcher process)"
            )
        options = self.container_options(spec, name, image)
        self.ensure_image(image)
        try:
            container = self.create_container(image, options)
        except APIError as exc:
            if exc.status_code == 409:  # another start won the race for the name: adopt it
                raced = self.get(name)
                if raced is not None and raced.status == "running":
                    return self._handle(raced, adopted=True)
            raise LaunchError(
                f"Docker could not create the container for image {image!r}: {_engine(exc)}"
            ) from exc
        try:
            container.start()
        except APIError as exc:
            # e.g. an entrypoint that does not exist: the engine says so; nothing ran. What
            # it printed is the image's own output: the agent's log has it, the error (which
            # a workflow's history records) does not.
            output = self._tail(container, 20)
            if output:
                log.warning(
                    "container %s of image %r printed before it failed to start:\n%s",
                    name,
                    image,
                    "\n".join(output),
                )
            self._remove(container)
            raise LaunchError(
                f"Docker could not start the container of image {image!r}: {_engine(exc)}"
            ) from exc
        container.reload()
        if spec.kind == "code-server":
            self.pool.fill_later(spec)
        else:
            self._stop_if_unreachable(spec, container)
        return self._handle(container, adopted=False)

    def find(self, label: str, *, include_exited: bool = False) -> Handle | None:
        container = self.get(container_name(label))
        if container is None or not _is_for(container, label):
            return None
        if container.status != "running" and not include_exited:
            return None
        return self._handle(container, adopted=False, label=label)

    def inspect(self, handle: Handle) -> Inspection:
        # Watches call this for every container twice a second: one list of the running
        # ones, shared for a moment, answers them all; only an exit needs a call of its own.
        if handle.container_id:
            address = self._running().get(handle.container_id, _NOT_LISTED)
            if address is not _NOT_LISTED:
                return Inspection(running=True, address=address)
        container = self._container(handle)
        if container is None:
            return Inspection(running=False, found=False)
        state: dict[str, Any] = container.attrs.get("State", {})
        if container.status == "running":
            return Inspection(running=True, address=self._address(container))
        if container.status == "created":
            return Inspection(running=False, detail="the container was created but never started")
        exit_code = state.get("ExitCode")
        return Inspection(
            running=False,
            exit_code=exit_code if isinstance(exit_code, int) else None,
            detail=self._unreachable.get(container.id)
            or _describe_state(state, container.attrs.get("HostConfig", {})),
        )

    def stop(self, handle: Handle, grace_seconds: float) -> Inspection:
        container = self._container(handle)
        if container is not None and handle.kind == "code-server":
            # Its generation is over: the runs waiting in its pool would run old code.
            labels = container.labels
            with suppress(APIError, ValueError):
                self.pool.drain(
                    labels.get(LABEL_ORGANIZATION, ""),
                    labels.get(LABEL_DEPLOYMENT, ""),
                    labels.get(LABEL_LOCATION, ""),
                    int(labels.get(LABEL_GENERATION, "")),
                )
        if container is not None and container.status == "running":
            try:
                # SIGTERM to the container's init, which forwards it; SIGKILL after the grace
                # (whole seconds for Docker: rounded up, so the grace is never cut short).
                container.stop(timeout=max(math.ceil(grace_seconds), 0))
            except NotFound:
                pass
            except APIError as exc:
                raise LaunchError(
                    f"Docker could not stop {container.name}: {_engine(exc)}"
                ) from exc
        return self.inspect(handle)

    def log_tail(self, handle: Handle, lines: int) -> list[str]:
        container = self._container(handle)
        if container is None or lines <= 0:
            return []
        return self._tail(container, lines)

    def log_text(self, handle: Handle, max_bytes: int) -> tuple[str, bool]:
        container = self._container(handle)
        if container is None:
            return "", False
        try:
            raw: bytes = container.logs(stdout=True, stderr=True)
        except (NotFound, APIError):
            return "", False
        return raw[-max_bytes:].decode("utf-8", "replace"), len(raw) > max_bytes

    def cleanup(self, handle: Handle) -> None:
        container = self._container(handle)
        if container is not None and container.status != "running":
            self._remove(container)
            self._unreachable.pop(container.id, None)

    def finished(self, handle: Handle, succeeded: bool) -> None:
        if succeeded or not self.settings.keep_failed_runs:
            self.cleanup(handle)

    # ------------------------------------------------------------------ orphans

    def managed(self, organization: str, deployment: str) -> list[ManagedContainer]:
        """Every container this launcher started for the deployment, running or not. One list
        call (the SDK's ``containers.list`` would inspect each, and fail on one removed
        meanwhile, e.g. by a run that just finished); exit codes are looked up for exited
        containers only."""
        listed = self.client.api.containers(
            all=True,
            filters={
                "label": [
                    f"{LABEL_MANAGED}=true",
                    f"{LABEL_ORGANIZATION}={organization}",
                    f"{LABEL_DEPLOYMENT}={deployment}",
                ]
            },
        )
        result = []
        for c in listed:
            running = c.get("State") == "running"
            exit_code = None
            if not running:
                container = self.get(c["Id"])
                if container is None:
                    continue  # removed meanwhile
                exit_code = container.attrs.get("State", {}).get("ExitCode")
            name = (c.get("Names") or ["/"])[0].lstrip("/")
            result.append(
                ManagedContainer(c["Id"], name, c.get("Labels") or {}, running, exit_code)
            )
        return result

    def remove_container(self, container_id: str) -> None:
        container = self.get(container_id)
        if container is not None:
            self._remove(container)

    # ------------------------------------------------------------------ preparing a launch

    def container_options(self, spec: LaunchSpec, name: str, image: str) -> dict[str, Any]:
        """The container's configuration, checked against what the agent allows."""
        location = spec.location
        context = location.container or ContainerContext()
        network = context.network or self.settings.network
        self._check_network(network)
        volumes = self._volumes(context)
        labels = {k: v for k, v in context.labels.items() if not k.startswith(LABEL_PREFIX)}
        labels.update(
            {
                LABEL_MANAGED: "true",
                LABEL_LABEL: spec.label,
                LABEL_WORKFLOW_ID: spec.label.split("#", 1)[0],
                LABEL_KIND: spec.kind,
                LABEL_ORGANIZATION: spec.organization,
                LABEL_DEPLOYMENT: spec.deployment,
                LABEL_LOCATION: spec.location_name,
                LABEL_AGENT: self.agent_name,
            }
        )
        if spec.generation is not None:
            labels[LABEL_GENERATION] = str(spec.generation)
        if spec.run_id is not None:
            labels[LABEL_RUN_ID] = spec.run_id

        env = {"PYTHONUNBUFFERED": "1", **target_env(location)}
        options: dict[str, Any] = {
            "name": name,
            "labels": labels,
            "detach": True,
            # An init as PID 1 forwards SIGTERM to the command and reaps its children.
            "init": True,
            "working_dir": location.working_directory or None,
        }
        if spec.kind == "code-server":
            command = list(location.command or ["tether", "code-server"])
            if network == HOST_NETWORK:
                port = _free_port()
                labels[LABEL_PORT] = str(port)
                env["TETHER_CODE_SERVER_HOST"] = "127.0.0.1"
            else:
                port = self.settings.code_server_port
                env["TETHER_CODE_SERVER_HOST"] = "0.0.0.0"  # all interfaces of its own container
                if not self._by_name(network):
                    options["ports"] = {f"{port}/tcp": ("127.0.0.1", None)}
            env["TETHER_CODE_SERVER_PORT"] = str(port)
        else:
            command = ["tether", "run-worker"]
        env.update(location.env)
        env.update(context.env)
        env.update(spec.env)
        if location.kind == CodeLocationKind.DAGSTER and DAGSTER_STORAGE_ENV not in env:
            # What Dagster's default IO manager writes (assets) outlives a run's container:
            # a named volume of the location's, shared by its code server and run workers.
            volumes.setdefault(
                dagster_volume(spec.organization, spec.deployment, spec.location_name),
                {"bind": DAGSTER_STORAGE_TARGET, "mode": "rw"},
            )
            env[DAGSTER_STORAGE_ENV] = DAGSTER_STORAGE_TARGET
        options["command"] = command
        options["environment"] = env
        if network == HOST_NETWORK:
            options["network_mode"] = HOST_NETWORK
        elif network:
            options["network"] = network
        if volumes:
            options["volumes"] = volumes
        if context.memory:
            options["mem_limit"] = context.memory
            options["memswap_limit"] = context.memory  # the limit, not the limit plus swap
        if context.cpus:
            options["nano_cpus"] = int(context.cpus * 1e9)
        if self.settings.log_max_mb and self._log_driver in ("json-file", ""):
            # Docker keeps a container's output, unbounded by default, until it is removed.
            half = f"{self.settings.log_max_mb * 512}k"
            options["log_config"] = {
                "type": "json-file",
                "config": {"max-size": half, "max-file": "2"},
            }
        return options

    def create_container(self, image: str, options: dict[str, Any]) -> Container:
        """Create (not start) a container with ``container_options``' options. The named
        volume of a Dagster location's storage is made first, with the container's
        ownership labels, so a teardown finds it by them as it finds the containers."""
        labels = options.get("labels", {})
        for source in options.get("volumes", {}):
            if source.startswith(DAGSTER_VOLUME_PREFIX):
                self._ensure_volume(source, labels)
        container: Container = self.client.containers.create(image, **options)
        return container

    def _ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        try:
            self.client.volumes.get(name)
            return  # made before (perhaps by Docker itself, unlabelled, by an older agent)
        except NotFound:
            pass
        owned = {
            key: labels[key]
            for key in (LABEL_MANAGED, LABEL_ORGANIZATION, LABEL_DEPLOYMENT, LABEL_LOCATION)
            if key in labels
        }
        try:
            self.client.volumes.create(name=name, labels=owned)
        except APIError as exc:
            if exc.status_code != 409:  # made meanwhile by a concurrent start
                raise LaunchError(f"Docker could not create volume {name}: {_engine(exc)}") from exc

    def _stop_if_unreachable(self, spec: LaunchSpec, container: Container) -> None:
        """A run container whose control-plane URL is a loopback one, off the host's network,
        tries that URL and fails: without this it would retry until the control plane
        gives up on its heartbeats (minutes). Its first failed call (in its output) is the
        proof; the container is then stopped, and its exit explained by inspect()."""
        url = spec.env.get(CONTROL_PLANE_URL_ENV)
        context = spec.location.container or ContainerContext()
        problem = loopback_problem(url, context.network or self.settings.network)
        if url is None or problem is None:
            return
        deadline = time.monotonic() + UNREACHABLE_WATCH_SECONDS
        while time.monotonic() < deadline:
            try:
                container.reload()
            except NotFound:
                return
            output = "\n".join(self._tail(container, 50))
            if container.status != "running" or _failed_call(output, url):
                break
            time.sleep(0.2)
        else:
            return  # something does answer there: leave it running
        self._unreachable[container.id] = (
            f"could not reach the control plane at {url} from its container ({problem}), "
            "and was stopped by the agent"
        )
        log.warning(
            "run container %s cannot reach the control plane at %s; stopping it: %s",
            container.name,
            url,
            problem,
        )
        with suppress(NotFound, APIError):
            container.stop(timeout=UNREACHABLE_STOP_GRACE_SECONDS)

    def _check_network(self, network: str | None) -> None:
        allowed = {self.settings.network, *self.settings.allowed_networks}
        if network is not None and network not in allowed:
            raise LaunchError(
                f"the code location asks for network {network!r}, which this agent does not "
                f"allow (allowed: {', '.join(sorted(n for n in allowed if n)) or 'none'}); add it "
                "to the agent's TETHER_DOCKER_ALLOWED_NETWORKS, or remove it from the location"
            )

    def _volumes(self, context: ContainerContext) -> dict[str, dict[str, str]]:
        volumes: dict[str, dict[str, str]] = {}
        for mount in context.volumes:
            if mount.source.startswith(("/", ".", "~")) and not self.settings.allow_host_mounts:
                raise LaunchError(
                    f"the code location mounts host path {mount.source!r}, which this agent "
                    "does not allow: use a named volume, or set TETHER_DOCKER_ALLOW_HOST_MOUNTS"
                    "=true on the agent"
                )
            mode = "ro" if mount.read_only else "rw"
            volumes[mount.source] = {"bind": mount.target, "mode": mode}
        return volumes

    def _by_name(self, network: str | None) -> bool:
        """Whether the agent reaches code servers by container name (shared network)."""
        if network in (None, HOST_NETWORK, "bridge"):
            return False
        if self.settings.reach == "auto":
            return running_in_container()
        return self.settings.reach == "container-name"

    def ensure_image(self, image: str) -> None:
        policy = self.settings.pull
        if policy != "always":
            try:
                self.client.images.get(image)
                return
            except ImageNotFound:
                if policy == "never":
                    raise LaunchError(
                        f"image {image!r} is not on this agent's Docker engine, and the agent "
                        "does not pull (TETHER_DOCKER_PULL=never): load it there first"
                    ) from None
            except APIError as exc:
                raise LaunchError(
                    f"Docker could not look up image {image!r}: {_engine(exc)}"
                ) from exc
        repository, tag = _split_image(image)
        try:
            self.client.images.pull(repository, tag=tag, auth_config=self._auth_for(image))
        except (APIError, DockerException) as exc:
            raise LaunchError(
                f"image {image!r} could not be pulled: {_engine(exc)}; check the image name and "
                "tag, that the agent's engine can reach its registry, and the agent's registry "
                "credentials (TETHER_DOCKER_REGISTRY_*)"
            ) from exc

    def _auth_for(self, image: str) -> dict[str, str] | None:
        auth = self.settings.registry_auth
        if auth is None:
            return None
        if auth.server and not image.startswith(f"{auth.server}/"):
            return None
        return {"username": auth.username, "password": auth.password.get_secret_value()}

    # ------------------------------------------------------------------ engine helpers

    def get(self, name_or_id: str) -> Container | None:
        try:
            return self.client.containers.get(name_or_id)
        except NotFound:
            return None
        except APIError as exc:
            raise LaunchError(f"Docker could not look up {name_or_id}: {_engine(exc)}") from exc

    def _container(self, handle: Handle) -> Container | None:
        container = self.get(handle.container_id or container_name(handle.label))
        if container is None or not _is_for(container, handle.label):
            return None
        return container

    def _remove(self, container: Container) -> None:
        try:
            container.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise LaunchError(
                    f"Docker could not remove {container.name}: {_engine(exc)}"
                ) from exc

    def _tail(self, container: Container, lines: int) -> list[str]:
        try:
            raw: bytes = container.logs(stdout=True, stderr=True, tail=lines)
        except (NotFound, APIError):
            return []
        return last_lines(raw, lines)

    def _running(self) -> dict[str, str | None]:
        """Running containers of this launcher's kind, by ID, with their addresses; listed at
        most every ``running_list_seconds``, whichever thread asks."""
        with self._cache_lock:
            if time.monotonic() - self._cache_at > self.settings.running_list_seconds:
                listed = self.client.api.containers(
                    filters={"label": f"{LABEL_MANAGED}=true", "status": "running"}
                )
                self._cache = {
                    c["Id"]: self._address_of(
                        c.get("Labels") or {},
                        {p.get("PrivatePort"): p.get("PublicPort") for p in c.get("Ports") or []},
                        (c.get("Names") or ["/"])[0].lstrip("/"),
                    )
                    for c in listed
                }
                self._cache_at = time.monotonic()
            return self._cache

    def _address(self, container: Container) -> str | None:
        bindings = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
        published = {
            int(key.split("/")[0]): int(value[0]["HostPort"])
            for key, value in bindings.items()
            if value
        }
        return self._address_of(container.labels, published, container.name)

    def _address_of(
        self, labels: dict[str, str], published: dict[Any, Any], name: str
    ) -> str | None:
        if labels.get(LABEL_KIND) != "code-server":
            return None
        if LABEL_PORT in labels:
            return f"http://127.0.0.1:{labels[LABEL_PORT]}"
        port = self.settings.code_server_port
        if published.get(port):
            return f"http://127.0.0.1:{published[port]}"
        return f"http://{name}:{port}"

    def _handle(self, container: Container, *, adopted: bool, label: str | None = None) -> Handle:
        labels = container.labels
        started = container.attrs.get("State", {}).get("StartedAt") or container.attrs.get(
            "Created"
        )
        return Handle(
            label=label or labels[LABEL_LABEL],
            kind="code-server" if labels.get(LABEL_KIND) == "code-server" else "run-worker",
            launcher=self.name,
            container_id=container.id,
            image=container.attrs.get("Config", {}).get("Image"),
            started_at=_parse_time(started),
            adopted=adopted,
        )


def _failed_call(output: str, url: str) -> bool:
    """Whether the run worker's output shows a call to ``url`` that failed (its client logs
    "tether run-worker: GET <url>/... failed (ConnectError: ...)")."""
    base = url.rstrip("/")
    return any(base in line and " failed (" in line for line in output.splitlines())


def _is_for(container: Container, label: str) -> bool:
    """Whether ``container`` is the one of ``label``: its label says so, or it is a pooled
    container the launch of ``label`` took (its labels are the pool's, its name the run's)."""
    if container.labels.get(LABEL_LABEL) == label:
        return True
    return container.labels.get(LABEL_KIND) == POOL_KIND and container.name == container_name(label)


def _describe_state(state: dict[str, Any], host_config: dict[str, Any]) -> str | None:
    if state.get("OOMKilled"):
        limit = host_config.get("Memory") or 0
        where = f" (memory limit {limit // (1024 * 1024)} MiB)" if limit else ""
        return f"was killed for running out of memory{where}"
    if state.get("Error"):
        return f"failed to run: {state['Error']}"
    code = state.get("ExitCode")
    if isinstance(code, int) and code > _SIGNAL_BASE:
        return f"was killed by signal {code - _SIGNAL_BASE} (exit code {code})"
    return None


def _engine(exc: BaseException) -> str:
    """The engine's own message, without docker-py's wrapping."""
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc)


def _split_image(image: str) -> tuple[str, str | None]:
    if "@" in image:
        return image, None
    repository, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return repository, tag
    return image, "latest"


def _parse_time(value: str | None) -> datetime:
    try:
        return datetime.fromisoformat(value or "").astimezone(UTC)
    except ValueError:
        return datetime.now(UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
