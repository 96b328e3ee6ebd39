"""The process launcher: code servers and run workers as local processes of the agent's host.

Each label gets a directory ``{state_dir}/processes/{safe label}`` holding everything needed to
find the process again after the agent restarts (see README.md next to this file). Every
process runs under ``supervise.py``, which records the exit code even when the agent that
started it is gone.

Linux is the target: identity checks read ``/proc``. Elsewhere (macOS for local development)
they degrade to "the PID exists", which cannot detect PID reuse.
"""

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

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
from activities.launchers.process_files import (
    HAVE_PROC,
    TERMINATED_FILE,
    Record,
    label_dir_name,
    pid_exists,
    read_int,
    read_proc_stat,
    read_tail,
    remove,
    terminated_at,
    try_lock_file,
    write_atomically,
)
from activities.launchers.retention import MB, FinishedFolder, OutputRetention, sweep_folders
from tether_sdk import supervise
from tether_sdk.forkserver import SpawnRequest, SpawnUncertain, spawn

if TYPE_CHECKING:
    from temporalio.client import Client

    from worker.config import AgentConfig

SUPERVISOR = supervise.__file__

# Variables of the agent's own configuration (its token, its Temporal connection) never reach
# user code; whatever user code needs arrives explicitly in LaunchSpec.env or location.env.
PRIVATE_ENV_PREFIXES = ("TETHER_", "TEMPORAL_")

# How long finished() waits for an exited run's supervisor to end (it ends at once).
REAP_SECONDS = 5.0
POLL_SECONDS = 0.05
KILL_WAIT_SECONDS = 5.0
# start() waits until the supervisor has started the child (normally a few tens of ms): from
# then on its signal handlers are installed, so an immediate stop() cannot kill it before it
# records the exit code.
SUPERVISOR_READY_SECONDS = 10.0


class WarmStartUncertain(RuntimeError):
    """The fork server may have started the worker without saying so: retried, not cold."""


class ProcessLauncher(Launcher):
    """Launches processes on this host. Blocking and thread-safe; two agent processes may
    share ``state_dir`` (starts are serialized with a file lock)."""

    name = "process"
    orphan_kind = "code servers served from another host"

    def __init__(
        self,
        state_dir: Path,
        default_python: str = sys.executable,
        retention: OutputRetention | None = None,
    ) -> None:
        # Absolute: the port file path is handed to a child that runs in another directory.
        self.state_dir = Path(state_dir).resolve()
        self.default_python = default_python
        # What sweep() removes, and the cap of each output.log (applied by the supervisor).
        self.retention = retention or OutputRetention()
        self._guard = threading.Lock()
        self._label_locks: dict[str, threading.Lock] = {}
        # The supervisors this instance started, by label: poll() them to get exit codes and
        # so that none is left behind as a zombie.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @classmethod
    def from_config(cls, config: "AgentConfig") -> Self:
        return cls(config.state_dir, retention=config.output_retention)

    # ------------------------------------------------------------------ capabilities

    @property
    def supports_warm_fork(self) -> bool:
        """A code server of a ``launch: warm`` location runs a fork server (``fork_socket``)."""
        return True

    @property
    def supports_orphan_reaping(self) -> bool:
        """Code servers here that their workflow records on another host are stopped."""
        return True

    @property
    def supports_kept_output(self) -> bool:
        """Each label's folder (its output.log, exit code) stays after the exit; ``sweep``."""
        return True

    async def reap_orphans(
        self, temporal: "Client", organization: str, deployment: str, host_queue: str
    ) -> list[str]:
        """Stop this host's code servers that their workflow records on another host (a start
        retried elsewhere after this agent died inside it). What it runs stays otherwise:
        adopting it is what a restarted agent is for."""
        # Imported here: ownership.py imports this module.
        from activities.ownership import stop_stray_code_servers

        return await stop_stray_code_servers(self, temporal, organization, deployment, host_queue)

    # ------------------------------------------------------------------ Launcher interface

    def start(self, spec: LaunchSpec) -> Handle:
        if not spec.label:
            raise LaunchError("the launch label is empty")
        directory = self._dir(spec.label)
        command, env, cwd = self._prepare(spec, directory)
        with self._locked(spec.label, create=True):
            record = self._read_record(spec.label)
            if record is not None and self._running(record):
                return self._handle(record, adopted=True)
            self._forget_exited(spec.label)
            for stale in ("exit_code", "port", "child_pid", "finished"):
                remove(directory / stale)
            log_path = directory / "output.log"
            started_at = datetime.now(UTC)
            warm = self._start_warm(spec, env, cwd, directory, log_path, started_at)
            if warm is not None:
                return warm
            with open(log_path, "ab") as log:
                log.write(
                    f"--- tether: starting {spec.kind} {spec.label} at "
                    f"{started_at.isoformat()} ---\n".encode()
                )
                log.flush()
                popen = subprocess.Popen(
                    [
                        sys.executable,
                        # Isolated and without site: the supervisor needs only the stdlib,
                        # and skipping site-packages halves its start-up cost per run.
                        "-I",
                        "-S",
                        SUPERVISOR,
                        "--exit-file",
                        str(directory / "exit_code"),
                        "--child-pid-file",
                        str(directory / "child_pid"),
                        *self._log_cap_args(log_path),
                        "--",
                        *command,
                    ],
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    # Its own session and process group (group ID = supervisor PID): signals
                    # to the agent's group or terminal never reach it, and stop() can signal
                    # the supervisor, the child and the child's children at once.
                    start_new_session=True,
                )
            with self._guard:
                self._children[spec.label] = popen
            # Read now, before the supervisor can be reaped: an unreaped process keeps its
            # /proc entry even if it has already exited.
            record = self._record_started(spec, popen.pid, started_at, directory, log_path)
            self._wait_supervisor_ready(popen, directory)
            return self._handle(record, adopted=False)

    def fork_socket(self, label: str) -> Path:
        """Where the fork server of the code server ``label`` listens. Short, because a Unix
        socket path holds at most 107 bytes; in a directory only this user may enter."""
        base = Path(tempfile.gettempdir()) / f"tether-{os.getuid()}"
        base.mkdir(mode=0o700, exist_ok=True)
        digest = hashlib.sha256(f"{self.state_dir}\0{label}".encode()).hexdigest()[:24]
        return base / f"{digest}.sock"

    def _start_warm(
        self,
        spec: LaunchSpec,
        env: dict[str, str],
        cwd: str | None,
        directory: Path,
        log_path: Path,
        started_at: datetime,
    ) -> Handle | None:
        """A run worker forked by its code server's fork server, or None: start it cold (the
        location is not warm, or its fork server is not up)."""
        if spec.kind != "run-worker" or spec.location.launch != "warm" or not spec.warm_from:
            return None
        socket_path = self.fork_socket(spec.warm_from)
        request = SpawnRequest(
            label=spec.label,
            env={**env, "TETHER_LAUNCH": "warm"},
            cwd=cwd or os.getcwd(),
            output_path=str(log_path),
            exit_file=str(directory / "exit_code"),
            child_pid_file=str(directory / "child_pid"),
            args={"run": spec.run.model_dump(mode="json")} if spec.run else {},
            max_log_bytes=max(0, int(self.retention.max_log_mb * MB)),
        )
        with open(log_path, "ab") as log:
            log.write(
                f"--- tether: starting {spec.kind} {spec.label} at {started_at.isoformat()} "
                f"(warm, forked by the code server {spec.warm_from}) ---\n".encode()
            )
        try:
            pid = spawn(str(socket_path), request)
        except OSError as exc:
            with open(log_path, "ab") as log:
                log.write(f"--- tether: no warm start ({exc}): starting cold ---\n".encode())
            return None
        except SpawnUncertain as exc:
            # A worker may run with this launch's token: the activity's retry mints a new
            # one (which the control plane then refuses that worker) and starts again.
            with open(log_path, "ab") as log:
                log.write(f"--- tether: warm start uncertain ({exc}): retrying ---\n".encode())
            raise WarmStartUncertain(f"warm start of {spec.label} uncertain: {exc}") from exc
        record = self._record_started(spec, pid, started_at, directory, log_path)
        launch_mode.note("warm")
        deadline = time.monotonic() + SUPERVISOR_READY_SECONDS
        while not (directory / "child_pid").exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        return self._handle(record, adopted=False)

    def _record_started(
        self, spec: LaunchSpec, pid: int, started_at: datetime, directory: Path, log_path: Path
    ) -> Record:
        """Record a just-started supervisor (cold or forked): its PID with its start time, so
        a reused PID is never mistaken for it."""
        stat = read_proc_stat(pid) if HAVE_PROC else None
        record = Record(
            label=spec.label,
            kind=spec.kind,
            pid=pid,
            start_ticks=stat.start_ticks if stat else None,
            started_at=started_at,
            log_path=str(log_path),
        )
        self._write_record(directory, record)
        return record

    def find(self, label: str, *, include_exited: bool = False) -> Handle | None:
        record = self._read_record(label)
        if record is None or not (include_exited or self._running(record)):
            return None
        return self._handle(record, adopted=False)

    def inspect(self, handle: Handle) -> Inspection:
        directory = self._dir(handle.label)
        if not directory.is_dir():
            return Inspection(running=False, found=False)
        record = self._record_for(handle)
        if record is None:
            # Another generation runs under this label now (or the files are gone): what
            # this handle pointed to has exited, with an exit code nobody kept.
            return Inspection(running=False, found=(self._read_record(handle.label) is not None))
        if self._running(record):
            port = read_int(directory / "port")
            return Inspection(
                running=True, address=f"http://127.0.0.1:{port}" if port is not None else None
            )
        exit_code = read_int(directory / "exit_code")
        if exit_code is None:
            popen = self._popen(record)
            if popen is not None:
                exit_code = popen.poll()
        return Inspection(running=False, exit_code=exit_code)

    def stop(self, handle: Handle, grace_seconds: float) -> Inspection:
        # Under the label lock: a concurrent start() must not adopt what is being stopped.
        with self._locked(handle.label, create=False):
            record = self._record_for(handle)
            if record is None or not self._running(record):
                return self.inspect(handle)
            # The grace counts from the first SIGTERM any stop sent this process: a stop
            # repeated (a retried activity, a restarted agent) waits out what is left of it
            # and sends no second one (a run worker takes a later SIGTERM for an operator's
            # insistence and exits at once, dropping its buffered events).
            directory = self._dir(handle.label)
            since = terminated_at(directory, record)
            if since is None:
                since = time.time()
                write_atomically(
                    directory / TERMINATED_FILE,
                    json.dumps({"pid": record.pid, "start_ticks": record.start_ticks, "at": since})
                    + "\n",
                )
                self._signal_group(record.pid, signal.SIGTERM)
            remaining = max(grace_seconds, 0.0) - max(time.time() - since, 0.0)
            if self._wait_exited(record, max(remaining, 0.0)):
                return self.inspect(handle)
            self._signal_group(record.pid, signal.SIGKILL)
            if self._wait_exited(record, KILL_WAIT_SECONDS):
                exit_file = self._dir(handle.label) / "exit_code"
                if read_int(exit_file) is None:
                    # The supervisor died with its child and could not record this; keep it
                    # for whoever inspects later, possibly another agent process.
                    write_atomically(exit_file, f"{-signal.SIGKILL}\n")
            return self.inspect(handle)

    def log_tail(self, handle: Handle, lines: int) -> list[str]:
        if lines <= 0:
            return []
        path = Path(handle.log_path) if handle.log_path else self._dir(handle.label) / "output.log"
        try:
            with open(path, "rb") as f:
                data = read_tail(f, lines)
        except FileNotFoundError:
            return []
        return last_lines(data, lines)

    def log_text(self, handle: Handle, max_bytes: int) -> tuple[str, bool]:
        path = Path(handle.log_path) if handle.log_path else self._dir(handle.label) / "output.log"
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - max_bytes))
                data = f.read(max_bytes)
        except FileNotFoundError:
            return "", False
        return data.decode("utf-8", "replace"), size > max_bytes

    def cleanup(self, handle: Handle) -> None:
        directory = self._dir(handle.label)
        if not directory.is_dir():
            return
        with self._locked(handle.label, create=False):
            # Checks the label's *current* process, not just the handle's: a newer
            # generation's files must survive the cleanup of an older handle.
            record = self._read_record(handle.label)
            if record is not None and self._running(record):
                return
            self._forget_exited(handle.label)
            shutil.rmtree(directory, ignore_errors=True)

    def finished(self, handle: Handle, succeeded: bool) -> None:
        """The run's outcome is recorded: mark its folder (``finished``), so that the size
        bound of ``sweep`` may remove it. The folder itself stays, with the run's log."""
        with self._locked(handle.label, create=False):
            record = self._record_for(handle)
            if record is None:
                return
            with suppress(OSError):  # only a marker: the age bound still applies without it
                write_atomically(
                    self._dir(handle.label) / "finished",
                    f"{datetime.now(UTC).isoformat()} {'success' if succeeded else 'failure'}\n",
                )
            # Its supervisor exits right after recording the exit: this agent, its parent,
            # reaps it now, so that no finished run leaves a zombie process behind.
            popen = self._popen(record)
            if popen is not None:
                with suppress(subprocess.TimeoutExpired):
                    popen.wait(REAP_SECONDS)
                self._forget_exited(handle.label)

    def sweep(self, retention: OutputRetention | None = None) -> list[str]:
        """Remove the folders of exited processes older than ``keep_hours``, then the oldest
        (code servers', and runs' whose outcome is recorded) while they exceed
        ``max_total_mb``; returns the labels removed. A running process's folder, or one
        whose lock another thread or agent process holds, is never touched."""
        retention = retention or self.retention
        try:
            directories = [d for d in (self.state_dir / "processes").iterdir() if d.is_dir()]
        except FileNotFoundError:
            return []
        surveyed = [s for s in map(self._survey, directories) if s is not None]
        pids = {folder.path: pid for folder, pid in surveyed}
        removed = sweep_folders(
            [folder for folder, _ in surveyed],
            retention,
            lambda folder: self._remove_exited(folder, pids[folder.path]),
        )
        return [folder.name for folder in removed]

    def labels(self) -> list[str]:
        """Labels of everything recorded in the state directory, running or not."""
        found = []
        for record_file in sorted((self.state_dir / "processes").glob("*/process.json")):
            try:
                found.append(str(json.loads(record_file.read_text())["label"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

    def stop_all(self, grace_seconds: float) -> int:
        """Stop everything still running from this state directory, in parallel; returns
        how many. For tearing down a whole local stack (``tether dev``, tests, benchmarks):
        an agent that merely restarts must never call it."""
        handles = [h for h in map(self.find, self.labels()) if h is not None]
        if handles:
            with ThreadPoolExecutor(max_workers=min(8, len(handles))) as pool:
                list(pool.map(lambda h: self.stop(h, grace_seconds), handles))
        return len(handles)

    # ------------------------------------------------------------------ preparing a launch

    def _prepare(
        self, spec: LaunchSpec, directory: Path
    ) -> tuple[list[str], dict[str, str], str | None]:
        """The command, environment and working directory, validated before anything runs."""
        location = spec.location
        cwd = location.working_directory
        if cwd is not None and not Path(cwd).is_dir():
            raise LaunchError(
                f"working directory {cwd!r} of the code location does not exist on this "
                "agent's host (or is not a directory): create it, or fix working_directory "
                "in the code location"
            )
        python = location.python_executable or self.default_python
        if spec.kind == "code-server":
            command = list(location.command or [python, "-m", "tether_sdk.code_server"])
        else:
            command = [python, "-m", "tether_sdk.run_worker"]
        if not command or not command[0]:
            raise LaunchError("the code location's command is empty: give a program to run")

        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(PRIVATE_ENV_PREFIXES)
        }
        env["PYTHONUNBUFFERED"] = "1"  # output goes to a file: keep log tails current
        env.update(target_env(location))
        if spec.kind == "code-server":
            env["TETHER_CODE_SERVER_HOST"] = "127.0.0.1"
            env["TETHER_CODE_SERVER_PORT"] = "0"
            env["TETHER_PORT_FILE"] = str(directory / "port")
            if location.launch == "warm":
                env["TETHER_FORK_SOCKET"] = str(self.fork_socket(spec.label))
        else:
            env["TETHER_LAUNCH"] = "cold"
        env.update(location.env)
        env.update(spec.env)

        program = command[0]
        what = "python executable" if program == python else "program"
        if os.sep in program:
            # Relative paths are relative to the working directory, where the child runs.
            path = Path(cwd or os.getcwd(), program)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise LaunchError(
                    f"{what} {program!r} does not exist or is not executable on this agent's "
                    f"host (looked at {str(path)!r}): install it there, or fix "
                    f"{'python_executable' if what.startswith('python') else 'command'} in "
                    "the code location"
                )
        elif shutil.which(program, path=env.get("PATH", os.defpath)) is None:
            raise LaunchError(
                f"{what} {program!r} was not found on the PATH of this agent's host: install "
                "it, or give an absolute path in the code location"
            )
        return command, env, cwd

    # ------------------------------------------------------------------ state and identity

    def _dir(self, label: str) -> Path:
        return self.state_dir / "processes" / label_dir_name(label)

    def _handle(self, record: Record, *, adopted: bool) -> Handle:
        return Handle(
            label=record.label,
            kind=record.kind,
            launcher=self.name,
            pid=record.pid,
            log_path=record.log_path,
            started_at=record.started_at,
            adopted=adopted,
        )

    def _read_record(self, label: str) -> Record | None:
        return self._load_record(self._dir(label))

    @staticmethod
    def _load_record(directory: Path) -> Record | None:
        try:
            data = json.loads((directory / "process.json").read_text())
            return Record(
                label=str(data["label"]),
                kind=data["kind"],
                pid=int(data["pid"]),
                start_ticks=None if data["start_ticks"] is None else int(data["start_ticks"]),
                started_at=datetime.fromisoformat(data["started_at"]),
                log_path=str(data["log_path"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            # Missing or unreadable: as far as we can tell, nothing runs under this label.
            return None

    def _write_record(self, directory: Path, record: Record) -> None:
        data = {
            "label": record.label,
            "kind": record.kind,
            "pid": record.pid,
            "start_ticks": record.start_ticks,
            "started_at": record.started_at.isoformat(),
            "log_path": record.log_path,
        }
        write_atomically(directory / "process.json", json.dumps(data, indent=2) + "\n")

    def _record_for(self, handle: Handle) -> Record | None:
        """The label's record, if it still describes the process of ``handle``."""
        record = self._read_record(handle.label)
        if record is None or (handle.pid is not None and handle.pid != record.pid):
            return None
        return record

    def _popen(self, record: Record) -> subprocess.Popen[bytes] | None:
        with self._guard:
            popen = self._children.get(record.label)
        return popen if popen is not None and popen.pid == record.pid else None

    def _running(self, record: Record) -> bool:
        """Is the process of ``record`` (or, if its supervisor died alone, its child) alive?"""
        popen = self._popen(record)
        if (self._dir(record.label) / "exit_code").exists():
            # The supervisor records its child's end, then exits: in between it is still
            # alive, but what it ran is not (and every instance must say the same). Its
            # parent still reaps it once it has exited: no zombie is left behind.
            if popen is not None:
                popen.poll()
            return False
        if popen is not None:
            # We are the parent: until we reap it, the PID cannot be reused, and poll() reaps.
            supervisor_alive = popen.poll() is None
        elif HAVE_PROC:
            stat = read_proc_stat(record.pid)
            supervisor_alive = (
                stat is not None
                and stat.state != "Z"
                and (record.start_ticks is None or stat.start_ticks == record.start_ticks)
            )
        else:
            supervisor_alive = pid_exists(record.pid)
        return supervisor_alive or self._orphan_alive(record)

    def _orphan_alive(self, record: Record) -> bool:
        """The command still runs although its supervisor was killed on its own (kill -9 of
        that one PID, the OOM killer). It must still be reported, and stop() must kill it."""
        directory = self._dir(record.label)
        # An exit file means the supervisor saw its child end: the PID in child_pid is stale.
        if not HAVE_PROC or record.start_ticks is None or (directory / "exit_code").exists():
            return False
        child = read_int(directory / "child_pid")
        if child is None:
            return False
        stat = read_proc_stat(child)
        # Still in the supervisor's process group and younger than the supervisor: the same
        # process, not a stranger that reused the PID.
        return (
            stat is not None
            and stat.state != "Z"
            and stat.pgrp == record.pid
            and stat.start_ticks >= record.start_ticks
        )

    def _forget_exited(self, label: str) -> None:
        with self._guard:
            popen = self._children.get(label)
            if popen is not None and popen.poll() is not None:
                del self._children[label]

    def _wait_exited(self, record: Record, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._running(record):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def _wait_supervisor_ready(self, popen: subprocess.Popen[bytes], directory: Path) -> None:
        deadline = time.monotonic() + SUPERVISOR_READY_SECONDS
        while not (directory / "child_pid").exists() and not (directory / "exit_code").exists():
            if popen.poll() is not None or time.monotonic() >= deadline:
                return
            time.sleep(0.005)

    @staticmethod
    def _signal_group(pgid: int, signum: signal.Signals) -> None:
        with suppress(ProcessLookupError):  # already gone
            os.killpg(pgid, signum)

    # ------------------------------------------------------------------ retention

    def _log_cap_args(self, log_path: Path) -> list[str]:
        max_bytes = int(self.retention.max_log_mb * MB)
        if max_bytes <= 0:
            return []
        return ["--log-file", str(log_path), "--max-log-bytes", str(max_bytes)]

    def _folder_record(self, directory: Path) -> Record | None:
        """The record of the folder, if it is the folder of the label it names."""
        record = self._load_record(directory)
        if record is None or label_dir_name(record.label) != directory.name:
            return None
        return record

    def _survey(self, directory: Path) -> tuple[FinishedFolder, int | None] | None:
        """The folder and its recorded PID, unless its process runs (or it is gone)."""
        record = self._folder_record(directory)
        if record is not None and self._running(record):
            return None
        size = 0
        newest = 0.0
        try:
            with os.scandir(directory) as entries:  # flat: the launcher makes no subfolders
                for entry in entries:
                    with suppress(FileNotFoundError):
                        stat = entry.stat(follow_symlinks=False)
                        size += stat.st_size
                        newest = max(newest, stat.st_mtime)
            newest = newest or directory.stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        folder = FinishedFolder(
            name=record.label if record is not None else directory.name,
            path=directory,
            last_activity=newest,
            size=size,
            # Without a record, nothing will ever read it, but it may be a start in progress:
            # only the age bound removes it.
            settled=record is not None
            and (record.kind != "run-worker" or (directory / "finished").exists()),
        )
        return folder, record.pid if record is not None else None

    def _remove_exited(self, folder: FinishedFolder, pid: int | None) -> bool:
        """Remove the folder if it still belongs to the exited process ``pid`` (None: to no
        record) and no one holds its locks; without waiting for them."""
        directory = folder.path
        record = self._folder_record(directory)
        label = record.label if record is not None else None
        thread_lock = self._thread_lock(label) if label is not None else None
        if thread_lock is not None and not thread_lock.acquire(blocking=False):
            return False
        try:
            fd = try_lock_file(directory)
            if fd is None:
                return False
            try:
                record = self._folder_record(directory)
                if (record.pid if record is not None else None) != pid or (
                    record is not None and self._running(record)
                ):
                    return False  # started again since the survey
                shutil.rmtree(directory, ignore_errors=True)
                gone = not directory.exists()
            finally:
                os.close(fd)
        finally:
            if thread_lock is not None:
                thread_lock.release()
        if label is not None:
            self._forget_exited(label)
        return gone

    # ------------------------------------------------------------------ locking

    def _thread_lock(self, label: str) -> threading.Lock:
        with self._guard:
            return self._label_locks.setdefault(label, threading.Lock())

    @contextmanager
    def _locked(self, label: str, *, create: bool) -> Iterator[None]:
        """Serialize work on ``label`` across threads and across agent processes that share
        the state directory. Without ``create``, a missing directory is not created (and
        there is nothing to lock in another process)."""
        with self._thread_lock(label):
            fd = self._lock_file(self._dir(label), create)
            try:
                yield
            finally:
                if fd is not None:
                    os.close(fd)  # releases the flock

    @staticmethod
    def _lock_file(directory: Path, create: bool) -> int | None:
        path = directory / ".lock"
        while True:
            if create:
                directory.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                if create:
                    continue  # removed by a cleanup between mkdir and open
                return None
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A cleanup in another process may have removed the directory while we waited:
            # then we hold a lock on a deleted file that nobody else will ever lock.
            try:
                current = os.stat(path)
                opened = os.fstat(fd)
                if (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)
