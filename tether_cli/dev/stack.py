"""The stack being run: the children started so far, waiting on them while watching for a
signal or a child that exits, and stopping them all, in order, at the end."""

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from rich.markup import escape

from tether_cli.dev.options import DevError, Options
from tether_cli.dev.printout import say
from tether_cli.dev.processes import Child, Signals

T = TypeVar("T")

POLL_SECONDS = 0.25

# The children's names, as messages and logs show them; ``shutdown`` stops them in this
# order: the agent first, so it never sees its control plane or Temporal vanish under it.
AGENT = "agent"
CONTROL_PLANE = "control plane"
TEMPORAL = "Temporal"


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived during startup."""


class ChildDied(Exception):
    """A child exited while the stack was starting (``during`` says when) or running."""

    def __init__(self, child: Child, during: str) -> None:
        super().__init__(f"{child.name} exited")
        self.child = child
        self.during = during


@dataclass
class Stack:
    options: Options
    signals: Signals
    children: list[Child] = field(default_factory=list)
    # Set when the agent starts: stops what it launched (given the hurry flag). A stopped
    # agent leaves its code servers and run workers for the next one to adopt.
    stop_launched: Callable[[threading.Event], None] | None = None

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
        """Poll ``probe`` until it returns something true, and return that; raise on a
        signal, a child's exit, or the timeout."""
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

    def shutdown(self) -> None:
        """Agent, then what it launched, then the control plane, then Temporal. A step that
        fails is reported and the next one still runs: nothing may be left behind."""
        hurry = self.signals.hurry
        by_name = {child.name: child for child in self.children}
        steps: list[Callable[[], None]] = []
        if AGENT in by_name:
            steps.append(functools.partial(by_name[AGENT].stop, hurry))
        if self.stop_launched is not None:
            steps.append(functools.partial(self.stop_launched, hurry))
        for name in (CONTROL_PLANE, TEMPORAL):
            if name in by_name:
                steps.append(functools.partial(by_name[name].stop, hurry))
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                say(f"[yellow]warning:[/] while stopping: {escape(repr(exc))}")
