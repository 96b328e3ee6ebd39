"""Turning a step's logging records and stdout/stderr lines into LOG events."""

import io
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TextIO

from tether_api.enums import EventType
from tether_sdk.run_worker.events import EventEmitter

STREAM_LEVELS = {"stdout": "INFO", "stderr": "WARNING"}
# The SDK's own HTTP traffic must never become events: each one would cause another send.
_IGNORED_LOGGERS = ("httpx", "httpcore", "tether_sdk")


class OutputCapture:
    """Installs, for the duration of one step, a root logging handler and line-capturing
    replacements of ``sys.stdout``/``sys.stderr`` that still write to the real streams.

    ``ignored_threads`` are the SDK's background threads (event sender, heartbeat): what
    they log or print is passed through but never captured, to avoid feedback loops.
    """

    def __init__(self, emitter: EventEmitter, ignored_threads: set[int] | None = None) -> None:
        self.emitter = emitter
        self.ignored_threads = ignored_threads if ignored_threads is not None else set()

    @contextmanager
    def step(self, step: str) -> Iterator[None]:
        handler = _EventLogHandler(self.emitter, step, self.ignored_threads)
        root = logging.getLogger()
        real_out, real_err = sys.stdout, sys.stderr
        out = LineWriter(self.emitter, step, "stdout", real_out, self.ignored_threads)
        err = LineWriter(self.emitter, step, "stderr", real_err, self.ignored_threads)
        root.addHandler(handler)
        sys.stdout, sys.stderr = out, err
        try:
            yield
        finally:
            sys.stdout, sys.stderr = real_out, real_err
            root.removeHandler(handler)
            out.flush_partial()
            err.flush_partial()


class LineWriter(io.TextIOBase):
    """A text stream that passes writes through and emits one LOG event per complete line."""

    def __init__(
        self,
        emitter: EventEmitter,
        step: str,
        stream: str,
        real: TextIO,
        ignored_threads: set[int],
    ) -> None:
        super().__init__()
        self._emitter = emitter
        self._step = step
        self._stream = stream
        self._level = STREAM_LEVELS[stream]
        self._real = real
        self._ignored = ignored_threads
        self._partial = ""
        self._lock = threading.Lock()

    # Attributes some libraries probe on sys.stdout.
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Code that needs a real fd (subprocess) gets the real stream's: its output is not
        # captured as events but still reaches the process's log.
        return self._real.fileno()

    def writable(self) -> bool:
        return True

    @property
    def buffer(self) -> object:
        # Binary writes (sys.stdout.buffer.write) go straight to the real stream, uncaptured.
        return self._real.buffer

    def write(self, text: str) -> int:
        # A closed or broken real stream must not fail the user's step.
        with suppress(OSError, ValueError):
            self._real.write(text)
        if threading.get_ident() in self._ignored:
            return len(text)
        with self._lock:
            if "\n" not in text:
                self._partial += text
                return len(text)
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with suppress(OSError, ValueError):
            self._real.flush()

    def flush_partial(self) -> None:
        """Emit a last line that had no newline (called when the step ends)."""
        with self._lock:
            line, self._partial = self._partial, ""
        if line:
            self._emit(line)

    def _emit(self, line: str) -> None:
        self._emitter.emit(
            EventType.LOG,
            step=self._step,
            level=self._level,
            message=line.rstrip("\r"),
            data={"stream": self._stream},
        )


class _EventLogHandler(logging.Handler):
    def __init__(self, emitter: EventEmitter, step: str, ignored_threads: set[int]) -> None:
        super().__init__()
        self._emitter = emitter
        self._step = step
        self._ignored = ignored_threads

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread in self._ignored or record.name.startswith(_IGNORED_LOGGERS):
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self._emitter.emit(
                EventType.LOG,
                step=self._step,
                level=record.levelname[:20],
                message=message,
                data={"logger": record.name},
            )
        except Exception:
            self.handleError(record)
