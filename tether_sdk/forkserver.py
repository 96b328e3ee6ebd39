"""A fork server: warm run workers forked from a process that has the user's code imported.

Used by code locations deployed with ``launch: warm`` (the process launcher):

- The code server (``--fork-socket PATH``) forks this server right after loading the
  definitions and before it starts any thread (forking a threaded process copies locks held
  by threads that do not exist in the child). It listens on a Unix socket (mode 0600, in a
  directory only the agent's user may enter) and exits when the code server does (the end of
  a pipe it inherited closes).
- The process launcher asks it for a run worker instead of starting ``supervise.py`` and a
  new interpreter. The server forks a *supervisor* (A) that does what ``supervise.py`` does,
  and A forks the worker (B):

      fork server --fork--> A: setsid, output to output.log, ignores SIGTERM/SIGINT/SIGHUP,
                               writes child_pid, waits for B, writes exit_code
                            A --fork--> B: default signals, the run's env and cwd, fresh
                                           random state, runs the run worker, os._exit

  The launcher records A's PID and start time as it records a cold supervisor's, so finding,
  adopting, stopping (its process group) and reading the exit code stay the same. A is in a
  session of its own: replacing the code server (a redeploy) leaves running workers alone.
- B starts with the definitions imported: no interpreter start and no imports per run. Its
  control-plane client, threads and sockets are its own (the server has none to inherit).

A caps ``output.log`` as the cold supervisor does (``supervise.cap_log``, in a thread A starts
after forking B, so B inherits no thread).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import select
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tether_sdk.supervise import cap_log, ignore_signal, write_atomically

# One request or answer is one JSON line; a run's env fits easily.
MAX_MESSAGE_BYTES = 1024 * 1024
# How long an exited supervisor may wait to be reaped when no request comes.
REAP_SECONDS = 1.0


@dataclass
class SpawnRequest:
    """What the launcher asks for: one run worker, set up as a cold launch would be."""

    label: str
    env: dict[str, str]
    cwd: str
    output_path: str
    exit_file: str
    child_pid_file: str
    # What the worker runs: the fork server's target is called with these.
    args: dict[str, Any] = field(default_factory=dict)
    # Cut output.log to its latest half past this size (0: never).
    max_log_bytes: int = 0


Target = Callable[[SpawnRequest], int]

# The signals a launcher stops a run with, sent to the supervisor's whole process group.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _worker(request: SpawnRequest, target: Target) -> int:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    # Delivered now, by default (the worker ends), if one came since the fork (see _supervise).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    os.environ.clear()
    os.environ.update(request.env)
    os.chdir(request.cwd)
    random.seed()  # not the parent's sequence: every run gets its own
    try:
        return target(request)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1


def _supervise(request: SpawnRequest, target: Target) -> int:
    """Process A: the cold path's supervise.py, forked instead of exec'd."""
    # Blocked until each process has its own disposition: a stop signal that reached B
    # between the fork and B's SIG_DFL would run A's Python handler in B, a no-op, and B
    # would go on. Blocked, it waits for B's unblock and ends B (seen in CI under load).
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log = os.open(request.output_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in (devnull, log):
        os.close(fd)
    for signum in STOP_SIGNALS:
        signal.signal(signum, ignore_signal)  # survives the group's signals to record B's exit
    child = os.fork()
    if child == 0:
        code = _worker(request, target)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code & 0xFF)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    write_atomically(request.child_pid_file, f"{child}\n")
    if request.max_log_bytes > 0:
        threading.Thread(
            target=cap_log, args=(request.output_path, request.max_log_bytes), daemon=True
        ).start()
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    returncode = os.waitstatus_to_exitcode(status)
    write_atomically(request.exit_file, f"{returncode}\n")
    return 128 - returncode if returncode < 0 else returncode


class ForkServer:
    """Serves spawn requests on a Unix socket until ``parent_fd`` reads end-of-file."""

    def __init__(
        self,
        socket_path: str,
        target: Target,
        parent_fd: int | None = None,
        listener: socket.socket | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.target = target
        self.parent_fd = parent_fd
        self.listener = listener

    def serve(self) -> None:
        # Supervisors are reaped here, with waitpid, not by the kernel (SIGCHLD ignored): a
        # reaped child's CPU time then adds to this process's (its children's and theirs,
        # the workers', included), which is how the run workers' CPU can be measured.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        listener = self.listener or bind_listener(self.socket_path)
        try:
            watched: list[Any] = [listener]
            if self.parent_fd is not None:
                watched.append(self.parent_fd)
            while True:
                readable, _, _ = select.select(watched, [], [], REAP_SECONDS)
                _reap()
                parent = self.parent_fd
                if parent is not None and parent in readable and not os.read(parent, 1):
                    return  # the code server is gone
                if listener in readable:
                    self._serve_one(listener)
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)

    def _serve_one(self, listener: socket.socket) -> None:
        """One request. Whatever goes wrong with it (the agent hung up, a fork failed) is that
        request's problem: the server goes on, or every later launch would start cold."""
        try:
            connection, _ = listener.accept()
            with connection:
                self._answer(connection, listener)
        except OSError as exc:
            print(f"tether fork server: a request failed: {exc!r}", file=sys.stderr, flush=True)

    def _answer(self, connection: socket.socket, listener: socket.socket) -> None:
        try:
            request = SpawnRequest(**json.loads(_read_line(connection)))
        except (ValueError, TypeError) as exc:
            connection.sendall(json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n")
            return
        # What the server holds now is never the worker's garbage: out of the collector's
        # sight (see _warm_up), the few objects made since the last fork included, once the
        # young generations' cyclic garbage is gone (frozen, it would never be freed).
        gc.collect(1)
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            listener.close()
            connection.close()
            try:
                code = _supervise(request, self.target)
            finally:
                sys.stdout.flush()
            os._exit(code & 0xFF)
        connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _reap() -> None:
    """Collect every supervisor that has exited (each wrote its worker's exit code already)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def bind_listener(socket_path: str) -> socket.socket:
    """The fork server's listening socket (a stale file from a crashed server is replaced),
    mode 0600: only the agent's user may ask for workers."""
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    os.chmod(socket_path, 0o600)
    listener.listen(16)
    return listener


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError("request too large")
    return data


class SpawnUncertain(Exception):
    """The fork server took the request and gave no answer: a worker may have started. Not a
    reason to start another one cold (two workers would run the run)."""


def spawn(socket_path: str, request: SpawnRequest, timeout: float = 10.0) -> int:
    """Ask the fork server at ``socket_path`` for a worker; return the supervisor's PID.
    Raises OSError when no server is there or it refused (nothing started: the launcher then
    starts the worker cold), SpawnUncertain when it may have started one."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(socket_path)  # fails: nothing was asked
        try:
            client.sendall(json.dumps(asdict(request)).encode() + b"\n")
            line = _read_line(client)
        except (OSError, ValueError) as exc:
            raise SpawnUncertain(f"the fork server did not answer: {exc!r}") from exc
    if not line:
        raise SpawnUncertain("the fork server closed the connection without an answer")
    try:
        answer = json.loads(line)
    except ValueError as exc:
        raise SpawnUncertain(f"the fork server's answer is unreadable: {line[:200]!r}") from exc
    if "pid" not in answer:
        raise OSError(f"the fork server refused: {answer.get('error', 'no answer')}")
    return int(answer["pid"])


def start_in_child(
    socket_path: str, target: Target, warm_up: Callable[[], None] | None = None
) -> tuple[int, int]:
    """Fork a fork server (call before starting any thread); return its PID and the write end
    of the pipe whose closing ends it. ``warm_up`` runs in the child before it serves: what
    it leaves imported, every worker forked from it has."""
    # Bound before the fork: the socket answers from the moment the code server reports
    # healthy, not once the child gets to it (a run launched then would start cold).
    listener = bind_listener(socket_path)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_fd)
        try:
            if warm_up is not None:
                _warm_up(warm_up)
            ForkServer(socket_path, target, parent_fd=read_fd, listener=listener).serve()
        finally:
            os._exit(0)
    os.close(read_fd)
    listener.close()  # the parent's copy; the file stays, the child listens
    return pid, write_fd


def warm_and_freeze(warm_up: Callable[[], None], say: Callable[[str], None]) -> None:
    """Run ``warm_up`` (a failed one costs the runs their first-use time, nothing else: said
    through ``say``), then freeze the heap. Frozen objects are left out of every collection.
    Without this a worker's first full collection walks the whole inherited heap (~195,000
    objects with dagster loaded) and writes to each one's header, copying every page it
    shares with the server: measured 110 ms in a forked child, 0 ms with it (CPython's advice
    for fork without exec). A pooled worker freezes for the same walk."""
    try:
        warm_up()
    except Exception as exc:
        say(f"the warm-up failed, runs pay their first use: {exc!r}")
    gc.collect()
    gc.freeze()


def _warm_up(warm_up: Callable[[], None]) -> None:
    """Requests that come meanwhile wait in the socket's backlog; the server serves after a
    failed warm-up too."""
    warm_and_freeze(
        warm_up, lambda line: print(f"tether fork server: {line}", file=sys.stderr, flush=True)
    )
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if others:
        # A forked worker would get copies of the locks these hold, but not the threads.
        print(
            f"tether fork server: the warm-up left threads running: {', '.join(others)}",
            file=sys.stderr,
            flush=True,
        )


def run_worker_target(location: Any) -> Target:
    """The target a code server's fork server runs: ``tether run-worker`` with the
    location's code (a ``tether_sdk.location.LoadedLocation``) already loaded. The run's ID,
    control plane and token come in the env, as they do for a cold worker (TETHER_RUN_ID,
    TETHER_CONTROL_PLANE_URL, TETHER_RUN_TOKEN)."""

    # Imported here, in the code server before it forks its fork server, not in each
    # worker: the run worker's modules (httpx among them) cost a cold import of ~70 ms.
    from tether_api.user_api import Run
    from tether_sdk.run_worker.client import preload
    from tether_sdk.run_worker.worker import options_from_env, run_worker

    preload()

    def target(request: SpawnRequest) -> int:
        run = Run.model_validate(request.args["run"]) if "run" in request.args else None
        return run_worker(options_from_env(request.env, location, run))

    return target
