"""The processes ``tether dev`` starts, and the signals it gets.

A child runs in its own session, its output appended to a log file; it is stopped by its
PID with a signal (or a few in turn), then SIGKILL. A signal to ``tether dev`` only sets a
flag, so the shutdown always runs in the main flow, in order.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from rich.markup import escape

from tether_cli.dev.printout import say

LOG_TAIL_LINES = 25
LOG_HEADER = "--- tether dev: starting"

# How a child is stopped: (signal, seconds to wait for the exit) in turn, then SIGKILL.
StopSteps = tuple[tuple[signal.Signals, float], ...]


class Signals:
    """SIGINT, SIGTERM and SIGHUP only set a flag: every wait watches it, so the shutdown
    always runs in the main flow, in order. A second signal hurries the shutdown (SIGKILL
    without grace)."""

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
    """Start ``command`` as ``name``, its output appended to ``log_path`` after a header."""
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
