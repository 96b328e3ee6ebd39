"""``tether dev``: the whole stack on one machine, in one command.

It starts, as child processes it owns, the Temporal dev server (unless one is given), the
control plane (SQLite under ``$TETHER_HOME``) and an agent with the process launcher; writes
the tokens to ``$TETHER_HOME/dev.json`` for the user commands; deploys the bundled example;
and stops everything again on Ctrl-C.

Every child runs in its own session and process group: Ctrl-C at the terminal reaches only
this process, which then stops the children in order (agent first, so it never sees its
control plane or Temporal vanish under it), each by its PID.
"""

import contextlib
import ctypes
import fcntl
import functools
import inspect
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tether_api.home import tether_home
from tether_cli.render import CliError

if TYPE_CHECKING:
    from tether_cli.client import TetherClient

T = TypeVar("T")

HOST = "127.0.0.1"
AGENT_NAME = "dev"
EXAMPLE_LOCATION = "quickstart"
EXAMPLE_MODULE = "tether_sdk.examples.quickstart"
EXAMPLE_CONFIG = '{"source": "s3://bucket/orders.csv"}'
CONCURRENCY = 10

TEMPORAL_READY_SECONDS = 60.0
CONTROL_PLANE_READY_SECONDS = 30.0
AGENT_READY_SECONDS = 60.0
EXAMPLE_READY_SECONDS = 60.0
POLL_SECONDS = 0.25
LOG_TAIL_LINES = 25
LOG_HEADER = "--- tether dev: starting"

# How each child is stopped: (signal, seconds to wait for the exit) in turn, then SIGKILL.
StopSteps = tuple[tuple[signal.Signals, float], ...]
# The agent finishes in-flight activities (5 s by default) and closes its Temporal worker.
AGENT_STOP: StopSteps = ((signal.SIGTERM, 20.0),)
# uvicorn waits for open requests, among them a long-poll of the (now stopped) agent that the
# server holds up to 20 s; a second SIGINT makes it stop waiting ("force quit").
CONTROL_PLANE_STOP: StopSteps = ((signal.SIGTERM, 2.0), (signal.SIGINT, 8.0))
TEMPORAL_STOP: StopSteps = ((signal.SIGTERM, 15.0),)
LAUNCHED_STOP_GRACE_SECONDS = 5.0

# out (stdout) gets the ready panel; err (stderr) progress and problems. Off a terminal (a
# log file, a test) nothing needs to fit a screen: a wide console keeps tokens and URLs on
# one line each instead of wrapping them.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str, style: str | None = None) -> None:
    """A line of Rich markup on stderr. After SIGHUP the terminal may be gone: the shutdown
    must go on without it."""
    with contextlib.suppress(OSError):
        err.print(message, style=style)


class DevError(CliError):
    """Ends ``tether dev`` with ``error: <message>``, after stopping what it started."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived during startup."""


class ChildDied(Exception):
    def __init__(self, child: "Child", during: str) -> None:
        super().__init__(f"{child.name} exited")
        self.child = child
        self.during = during


# --------------------------------------------------------------------------- signals


class Signals:
    """SIGINT, SIGTERM and SIGHUP only set a flag: every wait below watches it, so the
    shutdown always runs in the main flow, in order. A second signal hurries the shutdown
    (SIGKILL without grace)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()
        self.name = ""

    def install(self) -> None:
        # SIGHUP too: closing the terminal must stop the stack, and the children, in their
        # own sessions, would not get the hangup themselves.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.hurry.set()
            return
        self.name = signal.Signals(signum).name
        self.stop.set()

    def sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)


# --------------------------------------------------------------------------- children


def _die_with_parent_hook() -> Callable[[], None] | None:
    """On Linux, a hook that makes a child get SIGTERM when ``tether dev`` dies without
    cleaning up (SIGKILL, a crash): in their own sessions, nothing else would stop them,
    and they would keep the ports busy. Elsewhere, None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not between fork and exec
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


@dataclass
class Child:
    """One process ``tether dev`` started, with its log file."""

    name: str
    log_path: Path
    proc: "subprocess.Popen[bytes]"
    stop_steps: StopSteps

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        # The log is appended to across restarts: only this start's lines are about this.
        start = text.rfind(f"{LOG_HEADER} {self.name} ")
        return text[max(start, 0) :].rstrip("\n").split("\n")[-lines:]

    def stop(self, hurry: threading.Event) -> None:
        """Each of ``stop_steps`` in turn (a signal, then how long to wait for the exit), then
        SIGKILL; SIGKILL at once when hurried."""
        if self.proc.poll() is not None:
            return
        say(f"stopping {self.name} (pid {self.pid})", style="dim")
        for sig, seconds in self.stop_steps:
            # Popen signals its own, not yet reaped, child: the PID cannot have been reused.
            self.proc.send_signal(sig)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not hurry.is_set():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(0.1)
                    return
        if self.proc.poll() is None:
            why = "a second signal" if hurry.is_set() else "did not stop in time"
            say(f"killing {self.name} ({why})", style="yellow")
            self.proc.kill()
        self.proc.wait()


def spawn(
    name: str, command: list[str], log_path: Path, env: Mapping[str, str], stop_steps: StopSteps
) -> Child:
    with open(log_path, "ab") as log:
        log.write(f"{LOG_HEADER} {name} at {datetime.now(UTC).isoformat()} ---\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            # Its own session: the terminal's Ctrl-C reaches only us, and we stop it in order.
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),  # no other thread runs yet
        )
    child = Child(name=name, log_path=log_path, proc=proc, stop_steps=stop_steps)
    say(f"started {name} (pid {child.pid}), log {escape(str(log_path))}", style="dim")
    return child


# --------------------------------------------------------------------------- state files


def save_dev_file(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically, readable by the owner only: it holds tokens."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # a leftover tmp file may have had other permissions
        json.dump(dict(data), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def load_dev_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        say(
            f"ignoring unreadable {escape(str(path))} ({escape(str(exc))}); minting new tokens",
            style="yellow",
        )
        return {}
    return data if isinstance(data, dict) else {}


def lock_home(home: Path) -> IO[str]:
    """One ``tether dev`` per home: two would share the SQLite file and the agent's state
    directory, and each would stop the other's code servers. The lock goes with the
    process, however it ends."""
    lock = open(home / "dev.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise DevError(
            f"another `tether dev` (pid {holder}) is running with --home {home}; stop it "
            "first, or pass another --home"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


# --------------------------------------------------------------------------- ports


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers do: a port in TIME_WAIT is free to them, a listening one is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def check_ports(ports: list[tuple[int, str, str]]) -> None:
    """``ports``: (port, what, the flag that changes it). Raises naming the first problem."""
    seen: dict[int, str] = {}
    for port, what, flag in ports:
        if port in seen:
            raise DevError(f"{seen[port]} and {flag} are both {port}: give them different ports")
        seen[port] = flag
        if not 0 < port < 65536:
            raise DevError(f"{flag} {port} is not a TCP port (1-65535)")
        if port_in_use(port):
            raise DevError(
                f"port {port} on {HOST} ({what}) is already in use: pass {flag} to use "
                "another, or stop what is listening there"
            )


# --------------------------------------------------------------------------- the stack


@dataclass
class Options:
    home: Path
    port: int
    temporal_port: int
    temporal_ui_port: int
    temporal_metrics_port: int | None
    temporal_http_port: int | None
    temporal_address: str | None
    org: str
    deployment: str
    example: bool
    headless: bool

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def agent_state(self) -> Path:
        return self.home / "agent"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'tether.db'}"

    @property
    def own_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def temporal(self) -> str:
        return self.temporal_address or f"{HOST}:{self.temporal_port}"

    @property
    def temporal_ui(self) -> str | None:
        if not self.own_temporal or self.headless:
            return None
        return f"http://{HOST}:{self.temporal_ui_port}"

    def ports(self) -> list[tuple[int, str, str]]:
        ports = [(self.port, "control plane", "--port")]
        if self.own_temporal:
            ports.append((self.temporal_port, "Temporal", "--temporal-port"))
            if not self.headless:
                ports.append(
                    (self.temporal_ui_port, "Temporal UI", "--temporal-ui-port (or --headless)")
                )
            if self.temporal_metrics_port is not None:
                ports.append(
                    (self.temporal_metrics_port, "Temporal metrics", "--temporal-metrics-port")
                )
            if self.temporal_http_port is not None:
                ports.append((self.temporal_http_port, "Temporal HTTP", "--temporal-http-port"))
        return ports


@dataclass
class Tokens:
    user: str
    agent: str
    reused: bool


def _local_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for talking to the Temporal we start: a plain local server in the
    default namespace, whatever TEMPORAL_TLS/NAMESPACE/API_KEY the shell sets for another."""
    return {k: v for k, v in env.items() if not k.startswith("TEMPORAL_")}


@dataclass
class Stack:
    options: Options
    signals: Signals
    children: list[Child] = field(default_factory=list)
    agent_started: bool = False

    # --- waiting ------------------------------------------------------------------------

    def check(self, during: str) -> None:
        """Raise when asked to stop, or when a child has exited."""
        if self.signals.stop.is_set():
            raise Interrupted()
        for child in self.children:
            if child.exit_code() is not None:
                raise ChildDied(child, during)

    def wait_for(
        self, what: str, timeout: float, probe: Callable[[], T | None], hint: str = ""
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            self.check(f"during startup (waiting for {what})")
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise DevError(f"timed out after {timeout:g}s waiting for {what}{hint}")
            self.signals.sleep(POLL_SECONDS)

    def run_until_stopped(self) -> None:
        while not self.signals.stop.is_set():
            self.check("while running")
            self.signals.sleep(0.5)

    # --- starting -----------------------------------------------------------------------

    def start_temporal(self) -> None:
        o = self.options
        binary = _temporal_binary()
        command = [
            binary,
            "server",
            "start-dev",
            "--ip",
            HOST,
            "--port",
            str(o.temporal_port),
            "--db-filename",
            str(o.home / "temporal.db"),
            "--log-level",
            "warn",
        ]
        if o.headless:
            command.append("--headless")
        else:
            command += ["--ui-port", str(o.temporal_ui_port), "--ui-disable-news-fetch"]
        if o.temporal_metrics_port is not None:
            command += ["--metrics-port", str(o.temporal_metrics_port)]
        if o.temporal_http_port is not None:
            command += ["--http-port", str(o.temporal_http_port)]
        env = _local_env(os.environ)
        log = o.logs / "temporal.log"
        self.children.append(spawn("Temporal", command, log, env, TEMPORAL_STOP))

        def ready() -> bool:
            # `workflow list` needs the default namespace too, which the agent uses.
            try:
                probe = subprocess.run(
                    [binary, "workflow", "list", "--address", o.temporal, "--limit", "1"],
                    capture_output=True,
                    timeout=10,
                    env=env,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                return False
            return probe.returncode == 0

        self.wait_for(f"Temporal at {o.temporal}", TEMPORAL_READY_SECONDS, ready, f"; see {log}")
        say(f"Temporal is up at {escape(o.temporal)}", style="green")

    def start_control_plane(self) -> None:
        o = self.options
        command = [
            sys.executable,
            "-m",
            "tether_cli.main",
            "controlplane",
            "serve",
            "--db",
            o.database_url,
            "--host",
            HOST,
            "--port",
            str(o.port),
        ]
        env = {**os.environ, "TETHER_HOME": str(o.home), "PYTHONUNBUFFERED": "1"}
        log = o.logs / "controlplane.log"
        self.children.append(spawn("control plane", command, log, env, CONTROL_PLANE_STOP))

        def healthy() -> bool:
            try:
                return httpx.get(f"{o.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait_for(
            f"the control plane at {o.url}", CONTROL_PLANE_READY_SECONDS, healthy, f"; see {log}"
        )
        say(f"control plane is up at {o.url}", style="green")

    def client(self, user_token: str) -> "TetherClient":
        from tether_cli.client import TetherClient
        from tether_cli.context import Connection

        o = self.options
        return TetherClient(Connection(url=o.url, token=user_token, deployment=o.deployment))

    def tokens(self, saved: Mapping[str, Any]) -> Tokens:
        """The saved tokens when they still work for this organization and deployment (a
        restart keeps them); otherwise new ones from the bootstrap, which also creates the
        organization and deployment if missing."""
        o = self.options
        user, agent = saved.get("user_token"), saved.get("agent_token")
        same_tenant = saved.get("organization") == o.org and saved.get("deployment") == o.deployment
        if same_tenant and isinstance(user, str) and isinstance(agent, str):
            from tether_cli.client import ApiError, Unreachable

            try:
                with self.client(user) as client:
                    client.get_deployment()
                return Tokens(user=user, agent=agent, reused=True)
            except Unreachable as exc:
                raise DevError(exc.message) from exc
            except ApiError as exc:
                say(
                    f"the saved user token no longer works (HTTP {exc.status}); minting new tokens",
                    style="yellow",
                )
        # In-process, against the database the control plane serves: it is already at the
        # latest revision, so the bootstrap's migration step does nothing.
        from tether_controlplane.bootstrap import bootstrap

        result = bootstrap(o.database_url, o.org, o.deployment, CONCURRENCY)
        return Tokens(user=result.user_token, agent=result.agent_token, reused=False)

    def start_agent(self, tokens: Tokens) -> None:
        o = self.options
        command = [
            sys.executable,
            "-m",
            "tether_cli.main",
            "agent",
            "run",
            "--launcher",
            "process",
            "--name",
            AGENT_NAME,
            "--temporal-address",
            o.temporal,
            "--state-dir",
            str(o.agent_state),
        ]
        base = _local_env(os.environ) if o.own_temporal else dict(os.environ)
        env = {
            **base,
            "TETHER_HOME": str(o.home),
            "TETHER_CONTROL_PLANE_URL": o.url,
            # In the environment, not in argv: `ps` shows every user's argv.
            "TETHER_AGENT_TOKEN": tokens.agent,
            "PYTHONUNBUFFERED": "1",
        }
        log = o.logs / "agent.log"
        started_at = datetime.now(UTC)
        self.agent_started = True
        self.children.append(spawn("agent", command, log, env, AGENT_STOP))

        def heartbeating() -> bool:
            # An agent of the same name from the last `tether dev` may still count as
            # available: only a heartbeat sent after this start is this agent's.
            try:
                agents = client.list_agents()
            except CliError:
                return False
            return any(
                a.name == AGENT_NAME and a.available and a.last_heartbeat_at >= started_at
                for a in agents
            )

        with self.client(tokens.user) as client:
            self.wait_for(
                f"agent {AGENT_NAME!r}", AGENT_READY_SECONDS, heartbeating, f"; see {log}"
            )
        say(f"agent {AGENT_NAME!r} is heartbeating", style="green")

    def deploy(self, tokens: Tokens) -> None:
        """Deploy the example (unless told not to) and restart the code servers of the
        locations already there: the last `tether dev` stopped them. A redeploy brings them
        back at once, instead of after a failed health check and a restart backoff."""
        from tether_api.enums import CodeLocationStatus as Status
        from tether_api.models import CodeLocation, CodeLocationSpec
        from tether_cli.locations import is_settled

        o = self.options
        with self.client(tokens.user) as client:
            existing = client.list_locations()
            target: CodeLocation | None = None
            if o.example:
                spec = CodeLocationSpec(module=EXAMPLE_MODULE)
                put = client.put_location(EXAMPLE_LOCATION, spec)
                # Unchanged (a restart): the status still shows the old server's RUNNING, so
                # a redeploy gives a new generation whose RUNNING we can wait for.
                target = (
                    put.code_location if put.changed else client.redeploy_location(EXAMPLE_LOCATION)
                )
                say(
                    f"deploying the example code location {EXAMPLE_LOCATION!r} "
                    f"({EXAMPLE_MODULE}, generation {target.generation})",
                    style="dim",
                )
            for location in existing:
                if location.name == EXAMPLE_LOCATION and o.example:
                    continue
                if location.status in (Status.STOPPING, Status.STOPPED):
                    continue
                client.redeploy_location(location.name)
                say(f"restarting code location {location.name!r}", style="dim")
            if target is None:
                return
            since = target.updated_at

            def settled() -> CodeLocation | None:
                location = client.get_location(EXAMPLE_LOCATION)
                return location if is_settled(location, since) else None

            try:
                final = self.wait_for(
                    f"code location {EXAMPLE_LOCATION!r}", EXAMPLE_READY_SECONDS, settled
                )
            except DevError as exc:
                # The stack itself is up: say so, and keep it running.
                log = escape(str(o.logs / "agent.log"))
                say(f"[yellow]warning:[/] {escape(exc.message)}; see {log}")
                return
        if final.status == Status.RUNNING:
            jobs = len(final.snapshot.jobs) if final.snapshot else 0
            say(f"{EXAMPLE_LOCATION} is RUNNING ({jobs} jobs)", style="green")
            return
        error = final.error
        say(
            f"[yellow]warning:[/] {EXAMPLE_LOCATION} is in ERROR: "
            f"{escape(error.message if error else 'the code server failed')}"
        )
        for line in error.log_tail if error else []:
            say(escape(line), style="dim")

    # --- stopping -----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Agent, then what it launched, then the control plane, then Temporal. A step that
        fails is reported and the next one still runs: nothing may be left behind."""
        hurry = self.signals.hurry
        by_name = {child.name: child for child in self.children}
        steps: list[Callable[[], None]] = []
        if "agent" in by_name:
            steps.append(functools.partial(by_name["agent"].stop, hurry))
        if self.agent_started:
            steps.append(functools.partial(self.stop_launched, hurry))
        for name in ("control plane", "Temporal"):
            if name in by_name:
                steps.append(functools.partial(by_name[name].stop, hurry))
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                say(f"[yellow]warning:[/] while stopping: {escape(repr(exc))}")

    def stop_launched(self, hurry: threading.Event) -> None:
        """A stopped agent leaves its code servers and run workers running for the next one
        to adopt; `tether dev` is the whole stack, so it stops them too."""
        from activities.launchers.process import ProcessLauncher

        grace = 0.0 if hurry.is_set() else LAUNCHED_STOP_GRACE_SECONDS
        stopped = ProcessLauncher(self.options.agent_state).stop_all(grace)
        if stopped:
            say(f"stopped {stopped} code server(s) and run worker(s)", style="dim")


def _temporal_binary() -> str:
    from worker.temporal_binary import temporal_cli

    try:
        return temporal_cli()
    except FileNotFoundError as exc:
        raise DevError(f"{exc} (or pass --temporal-address)") from exc


def _temporal_command() -> str:
    """How to type the temporal CLI: bare when it is on PATH, else its full path."""
    try:
        binary = _temporal_binary()
    except DevError:
        return "temporal"
    on_path = shutil.which("temporal")
    return "temporal" if on_path and Path(on_path).resolve() == Path(binary).resolve() else binary


# --------------------------------------------------------------------------- output


def ready_panel(o: Options, tokens: Tokens) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(label: str, value: str) -> None:
        grid.add_row(label, Text(value))  # Text: a path or name is never read as markup

    row("Control plane", f"{o.url}   (API docs: {o.url}/docs)")
    row("Temporal", f"{o.temporal}   ({'started here' if o.own_temporal else 'external'})")
    if o.temporal_ui:
        row("Temporal UI", o.temporal_ui)
    row("Organization", o.org)
    row("Deployment", o.deployment)
    row("User token", tokens.user + (" (kept from the last start)" if tokens.reused else ""))
    row("Agent token", tokens.agent)
    row("Logs", f"{o.logs}/{{temporal,controlplane,agent}}.log")
    row("Saved to", f"{o.home / 'dev.json'}   (the tether commands read it)")

    # The user commands find dev.json through $TETHER_HOME: say so when this home is not
    # the one they would use.
    default_home = tether_home()
    same = default_home.resolve() == o.home.resolve()
    prefix = "" if same else f"TETHER_HOME={shlex.quote(str(o.home))} "
    if o.example:
        first = (
            f"{prefix}tether runs launch {EXAMPLE_LOCATION} etl "
            f"--config-json '{EXAMPLE_CONFIG}' --follow"
        )
    else:
        first = f"{prefix}tether deploy {EXAMPLE_LOCATION} --module {EXAMPLE_MODULE}"
    commands = Text(
        "\n".join(
            [
                first,
                f"{prefix}tether locations",
                f"{_temporal_command()} workflow list --address {o.temporal}",
            ]
        ),
        style="cyan",
    )
    return Panel(
        Group(grid, Text(""), Text("Try:", style="bold"), commands),
        title="[bold green]tether dev is running[/]",
        title_align="left",
        expand=False,
    )


# --------------------------------------------------------------------------- the command


def dev(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="TETHER_HOME",
            help="State directory: databases, tokens (dev.json), logs (default ~/.tether).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Control plane port.")] = 3000,
    temporal_port: Annotated[
        int, typer.Option("--temporal-port", help="Temporal dev server port (gRPC).")
    ] = 7233,
    temporal_ui_port: Annotated[
        int, typer.Option("--temporal-ui-port", help="Temporal Web UI port.")
    ] = 8233,
    temporal_metrics_port: Annotated[
        int | None,
        typer.Option(
            "--temporal-metrics-port", help="Temporal metrics port (default: a free one)."
        ),
    ] = None,
    temporal_http_port: Annotated[
        int | None,
        typer.Option("--temporal-http-port", help="Temporal HTTP API port (default: a free one)."),
    ] = None,
    temporal_address: Annotated[
        str | None,
        typer.Option(
            "--temporal-address",
            envvar="TEMPORAL_ADDRESS",
            help="Use this Temporal server (host:port) instead of starting one.",
        ),
    ] = None,
    org: Annotated[str, typer.Option("--org", help="Organization.")] = "local",
    deployment: Annotated[str, typer.Option("--deployment", help="Deployment.")] = "dev",
    no_example: Annotated[
        bool, typer.Option("--no-example", help="Do not deploy the bundled example.")
    ] = False,
    headless: Annotated[bool, typer.Option("--headless", help="No Temporal Web UI.")] = False,
) -> None:
    """Run the whole stack on this machine: Temporal dev server, control plane, agent.

    Starts `temporal server start-dev` (unless --temporal-address or TEMPORAL_ADDRESS names
    one), `tether controlplane serve` (SQLite under --home) and `tether agent run` with the
    process launcher; saves the tokens to $TETHER_HOME/dev.json, which the other tether
    commands read; deploys the bundled example as code location `quickstart`. Logs go to
    $TETHER_HOME/logs.

    A restart with the same --home keeps tokens, runs and code locations, and restarts the
    locations' code servers.

    Ctrl-C (or SIGTERM) stops the agent, then the code servers and run workers it started
    (a plain `tether agent run` leaves those running for the next agent to adopt; `tether
    dev` is the whole stack, so it stops them: runs in progress are interrupted), then the
    control plane, then Temporal. A second Ctrl-C kills what is left at once.
    """
    from tether_api.names import check_name

    try:
        check_name(org, "organization name")
        check_name(deployment, "deployment name")
    except ValueError as exc:
        say(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    home = (home or tether_home()).expanduser().absolute()
    options = Options(
        home=home,
        port=port,
        temporal_port=temporal_port,
        temporal_ui_port=temporal_ui_port,
        temporal_metrics_port=temporal_metrics_port,
        temporal_http_port=temporal_http_port,
        temporal_address=temporal_address or None,
        org=org,
        deployment=deployment,
        example=not no_example,
        headless=headless,
    )
    raise typer.Exit(run(options))


# Typer keeps the single line breaks of a help paragraph: one line per paragraph reads better.
dev.__doc__ = "\n\n".join(
    " ".join(paragraph.split()) for paragraph in inspect.cleandoc(dev.__doc__ or "").split("\n\n")
)


def run(o: Options) -> int:
    """Start, wait, stop; the exit code."""
    try:
        o.logs.mkdir(parents=True, exist_ok=True)
        lock = lock_home(o.home)
    except (OSError, DevError) as exc:
        say(f"[red]error:[/] {escape(getattr(exc, 'message', str(exc)))}")
        return 1
    with lock:
        signals = Signals()
        stack = Stack(o, signals)
        try:
            # Before anything starts: a busy port fails here, with nothing to clean up.
            check_ports(o.ports())
            if o.own_temporal:
                _temporal_binary()
            signals.install()
            return _run_stack(stack)
        except DevError as exc:
            say(f"[red]error:[/] {escape(exc.message)}")
            return 1
        finally:
            stack.shutdown()


def _run_stack(stack: Stack) -> int:
    o = stack.options
    try:
        if o.own_temporal:
            stack.start_temporal()
        else:
            say(
                f"using the Temporal server at {escape(o.temporal)} (not starting one)", style="dim"
            )
        stack.start_control_plane()
        dev_file = o.home / "dev.json"
        tokens = stack.tokens(load_dev_file(dev_file))
        save_dev_file(
            dev_file,
            {
                "url": o.url,
                "organization": o.org,
                "deployment": o.deployment,
                "user_token": tokens.user,
                "agent_token": tokens.agent,
                "temporal_address": o.temporal,
                "temporal_ui": o.temporal_ui,
            },
        )
        stack.start_agent(tokens)
        stack.deploy(tokens)
        out.print(ready_panel(o, tokens))
        out.print("Press Ctrl-C to stop everything.")
        stack.run_until_stopped()
        say(f"{stack.signals.name or 'stop'} received; stopping", style="dim")
        return 0
    except Interrupted:
        say(f"{stack.signals.name} received during startup; stopping", style="dim")
        return 0
    except ChildDied as exc:
        child = exc.child
        say(
            f"[red]error:[/] {child.name} (pid {child.pid}) exited with code "
            f"{child.exit_code()} {escape(exc.during)}; last lines of "
            f"{escape(str(child.log_path))}:"
        )
        for line in child.tail():
            say(escape(line), style="dim")
        return 1
    except CliError as exc:  # the control plane refused or did not answer
        say(f"[red]error:[/] {escape(exc.message)}")
        return 1
