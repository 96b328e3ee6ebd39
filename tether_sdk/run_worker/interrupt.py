"""Cancellation delivered into the main thread, only where it is safe to land.

A SIGTERM handler runs between any two bytecodes of the main thread. Raising there while
the SDK itself holds a lock (the event sink's, a captured stream's) would leave the lock
held forever and deadlock the worker. So SDK code that takes locks runs in ``critical()``:
a cancel arriving inside is deferred and raised on the way out, after the locks are free.
"""

import threading
from types import TracebackType


class RunCanceled(BaseException):
    """Raised in the main thread to interrupt the running step.

    A BaseException, like KeyboardInterrupt, so that a step's ``except Exception`` does not
    swallow the cancellation.
    """


class CancelState:
    """Cancellation requested from a signal handler (or a heartbeat, via a signal).

    ``request()`` raises RunCanceled only inside an interruptible window (a step's own code,
    loading the user's module) and outside every critical section; otherwise the caller sees
    ``requested`` at its next check.
    """

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""
        self.in_step = False  # inside an interruptible window
        self._main = threading.main_thread().ident
        self._masked = 0
        self._deferred = False

    def request(self, reason: str) -> None:
        if self.requested:
            return
        self.requested = True
        self.reason = reason
        if self.in_step:
            if self._masked:
                self._deferred = True
                return
            self.in_step = False
            raise RunCanceled(reason)

    def critical(self) -> "_Critical | _NoCritical":
        # Only the main thread can be interrupted: other threads need no mask, and must not
        # hold the main thread's.
        if threading.get_ident() != self._main:
            return _NO_CRITICAL
        return _Critical(self)


class _Critical:
    __slots__ = ("_state",)

    def __init__(self, state: CancelState) -> None:
        self._state = state

    def __enter__(self) -> None:
        self._state._masked += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state = self._state
        state._masked -= 1
        if not state._masked and state._deferred and state.in_step:
            state._deferred = False
            state.in_step = False
            raise RunCanceled(state.reason)


class _NoCritical:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_CRITICAL = _NoCritical()

# The run's cancel state while a run executes; SDK code reaches it through ``critical()``.
_current: CancelState | None = None


def set_current(state: CancelState | None) -> None:
    global _current
    _current = state


def critical() -> "_Critical | _NoCritical":
    """Enter around SDK code that takes locks in a thread a cancel may interrupt."""
    state = _current
    return _NO_CRITICAL if state is None else state.critical()
