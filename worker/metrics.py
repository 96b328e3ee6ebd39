"""The agent's Prometheus metrics, on one opt-in address: ``TETHER_AGENT_METRICS_ADDRESS``
(e.g. ``127.0.0.1:9464``; nothing listens unless it is set). Served by Temporal's SDK: its
runtime's Prometheus exporter brings the worker's own metrics (``temporal_*``: polls, task
latencies, slots, sticky cache) and Tether's, recorded through the same runtime's meter:

- ``tether_agent_launches_total{launcher,kind,mode}`` and ``tether_agent_launch_seconds``:
  code servers and run workers started, by mode (cold, warm: forked by the code server,
  pool: a container started ahead), and how long the start took;
- ``tether_agent_launch_errors_total{launcher,kind}``: starts that failed;
- ``tether_agent_code_server_starts_total``, ``..._restarts_total`` (a start after the
  location's previous server exited by itself), ``..._errors_total{stage}`` (stage launch:
  it could not start; exit: it exited without being stopped);
- ``tether_agent_runs_adopted_total``: run workers started before this agent (by an agent
  that stopped or crashed) that it took over: still running, or ended while no agent watched;
- ``tether_agent_orphans_removed_total``: what the launcher removed at start as owned by no
  workflow.

Counted by wrapping the launcher's methods (``instrument``): every caller is measured, and
the launchers only note a launch's mode (activities/launchers/launch_mode.py)."""

import ipaddress
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from activities.launchers import launch_mode
from activities.launchers.base import Handle, Inspection, Launcher, LaunchSpec
from worker.config import AgentConfigError

ADDRESS_VARIABLE = "TETHER_AGENT_METRICS_ADDRESS"
ADDRESS_HINT = "give IP:PORT, e.g. 127.0.0.1:9464 (0.0.0.0:9464 to be scraped from other hosts)"
# Launch latency: a warm fork takes milliseconds, a cold image pull minutes.
LAUNCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
# How many labels the counters remember (to count each adoption or exit once): the agent's
# memory must not grow with the runs it has launched.
REMEMBERED = 10_000


class MetricsUnavailable(Exception):
    """The metrics server could not start (the address is taken); the message says so."""


def metrics_address(environ: Mapping[str, str] = os.environ) -> str | None:
    """The address the metrics are served at, or None (off). Raises AgentConfigError naming
    the variable when it is not an IP:PORT (Temporal's exporter takes no host names)."""
    raw = environ.get(ADDRESS_VARIABLE, "").strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        valid = port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        valid = False
    if not valid:
        raise AgentConfigError(
            f"{ADDRESS_VARIABLE}: {raw!r} is not an address to listen on; {ADDRESS_HINT}"
        )
    return raw


def start_runtime(address: str, agent_name: str) -> Runtime:
    """A Temporal runtime that serves Prometheus metrics at ``address`` (``/metrics``); the
    agent's Temporal client must be connected with it."""
    config = PrometheusConfig(
        bind_address=address,
        # Prometheus's conventions: counters end in _total, durations are in seconds.
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={"tether_agent_launch_seconds": LAUNCH_BUCKETS},
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=config, global_tags={"agent": agent_name}))
    except ValueError as exc:
        raise MetricsUnavailable(
            f"cannot serve the agent's metrics at {address} ({ADDRESS_VARIABLE}): {exc}; "
            "free the port or choose another"
        ) from exc


class _Seen:
    """A bounded set of labels, oldest forgotten first; safe across launcher threads."""

    def __init__(self) -> None:
        self._labels: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, label: str) -> bool:
        """Add ``label``; False when it was there already."""
        with self._lock:
            if label in self._labels:
                return False
            self._labels[label] = None
            if len(self._labels) > REMEMBERED:
                self._labels.popitem(last=False)
            return True

    def __contains__(self, label: object) -> bool:
        with self._lock:
            return label in self._labels

    def discard(self, label: str) -> None:
        with self._lock:
            self._labels.pop(label, None)


def _location_of(label: str) -> str:
    # A code server's label is its CodeLocationWorkflow's ID and the server's number.
    return label.rpartition("#")[0] or label


class AgentMetrics:
    """Tether's figures of one agent, recorded through ``meter``."""

    def __init__(self, meter: MetricMeter, launcher: str) -> None:
        self.launcher = launcher
        self.started_at = datetime.now(UTC)
        self.launches = meter.create_counter(
            "tether_agent_launches", "Code servers and run workers started, by mode."
        )
        self.launch_seconds = meter.create_histogram_float(
            "tether_agent_launch_seconds",
            "How long starting a code server or run worker took.",
            "s",
        )
        self.launch_errors = meter.create_counter(
            "tether_agent_launch_errors", "Starts of code servers and run workers that failed."
        )
        self.server_starts = meter.create_counter(
            "tether_agent_code_server_starts", "Code servers started."
        )
        self.server_restarts = meter.create_counter(
            "tether_agent_code_server_restarts",
            "Code servers started after their location's previous one exited by itself.",
        )
        self.server_errors = meter.create_counter(
            "tether_agent_code_server_errors",
            "Code servers that could not start (stage launch) or exited without being "
            "stopped (stage exit).",
        )
        self.adopted = meter.create_counter(
            "tether_agent_runs_adopted",
            "Run workers started by an earlier agent and taken over (running or ended).",
        )
        self.orphans = meter.create_counter(
            "tether_agent_orphans_removed", "What the launcher removed as owned by no workflow."
        )
        self._launched = _Seen()  # labels started by this agent
        self._adopted = _Seen()
        self._stopping = _Seen()  # code servers being stopped: their exit is no error
        self._exited = _Seen()  # code servers seen exited by themselves
        self._crashed = _Seen()  # locations whose last server exited by itself
        # Every series from the start, at 0: dashboards and alerts see 0, not "no data".
        base = {"launcher": launcher}
        for mode in launch_mode.LAUNCH_MODES:
            self.launches.add(0, {**base, "kind": "run-worker", "mode": mode})
        self.launches.add(0, {**base, "kind": "code-server", "mode": "cold"})
        for kind in ("run-worker", "code-server"):
            self.launch_errors.add(0, {**base, "kind": kind})
        self.server_starts.add(0, base)
        self.server_restarts.add(0, base)
        for stage in ("launch", "exit"):
            self.server_errors.add(0, {**base, "stage": stage})
        self.adopted.add(0, base)
        self.orphans.add(0, base)

    def started(self, spec: LaunchSpec, handle: Handle, seconds: float, mode: str) -> None:
        base = {"launcher": self.launcher}
        if handle.adopted:
            if spec.kind == "run-worker" and self._adopted.add(spec.label):
                self.adopted.add(1, base)
            return
        self._launched.add(spec.label)
        attributes = {**base, "kind": spec.kind, "mode": mode}
        self.launches.add(1, attributes)
        self.launch_seconds.record(seconds, attributes)
        if spec.kind == "code-server":
            self.server_starts.add(1, base)
            location = _location_of(spec.label)
            if location in self._crashed:
                self._crashed.discard(location)
                self.server_restarts.add(1, base)

    def failed(self, spec: LaunchSpec) -> None:
        base = {"launcher": self.launcher}
        self.launch_errors.add(1, {**base, "kind": spec.kind})
        if spec.kind == "code-server":
            self.server_errors.add(1, {**base, "stage": "launch"})

    def inspected(self, handle: Handle, inspection: Inspection) -> None:
        base = {"launcher": self.launcher}
        if handle.kind == "run-worker":
            # Watched here, not started here, and older than this agent: taken over, whether
            # it still runs or ended while no agent watched it (this agent reports its end
            # instead of launching it again). Counting only running ones made the figure
            # depend on how long the restart took.
            if (
                inspection.found
                and handle.label not in self._launched
                and handle.started_at < self.started_at
                and self._adopted.add(handle.label)
            ):
                self.adopted.add(1, base)
            return
        if inspection.running or not inspection.found or handle.label in self._stopping:
            return
        if self._exited.add(handle.label):
            self.server_errors.add(1, {**base, "stage": "exit"})
            self._crashed.add(_location_of(handle.label))

    def stopping(self, handle: Handle) -> None:
        if handle.kind == "code-server":
            self._stopping.add(handle.label)

    def reaped(self, removed: list[str]) -> None:
        if removed:
            self.orphans.add(len(removed), {"launcher": self.launcher})


def instrument(launcher: Launcher, figures: AgentMetrics) -> Launcher:
    """Measure ``launcher``'s starts, watches, stops and orphan removals into ``figures``
    (its methods are wrapped on the instance; callers are unchanged)."""
    start: Callable[[LaunchSpec], Handle] = launcher.start
    inspect: Callable[[Handle], Inspection] = launcher.inspect
    stop: Callable[[Handle, float], Inspection] = launcher.stop
    reap = launcher.reap_orphans

    def timed_start(spec: LaunchSpec) -> Handle:
        launch_mode.begin()
        began = time.perf_counter()
        try:
            handle = start(spec)
        except Exception:
            figures.failed(spec)
            raise
        figures.started(spec, handle, time.perf_counter() - began, launch_mode.current())
        return handle

    def watched(handle: Handle) -> Inspection:
        inspection = inspect(handle)
        figures.inspected(handle, inspection)
        return inspection

    def stopped(handle: Handle, grace_seconds: float) -> Inspection:
        figures.stopping(handle)
        return stop(handle, grace_seconds)

    async def reaped(*args: Any, **kwargs: Any) -> list[str]:
        removed = await reap(*args, **kwargs)
        figures.reaped(removed)
        return removed

    launcher.start = timed_start  # type: ignore[method-assign]
    launcher.inspect = watched  # type: ignore[method-assign]
    launcher.stop = stopped  # type: ignore[method-assign]
    launcher.reap_orphans = reaped  # type: ignore[method-assign]
    return launcher
