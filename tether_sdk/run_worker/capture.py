"""Turning a step's logging records and stdout/stderr lines into LOG events."""

import io
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import TextIO

from tether_api.enums import EventType
from tether_api.wire import MAX_MESSAGE_CHARS
from tether_sdk.run_worker.events import EventEmitter
from tether_sdk.run_worker.interrupt import critical

STREAM_LEVELS = {"stdout": "INFO", "stderr": "WARNING"}
# The SDK's own HTTP traffic must never become events: each one would cause another send.
_IGNORED_LOGGERS = ("httpx", "httpcore", "tether_sdk")


class OutputCapture:
    """Installs, for the duration of one step, a root logging handler and line-capturing
    replacements of ``sys.stdout``/``sys.stderr`` that still write to the real streams.

    ``ignored_threads`` are the SDK's background threads (event sender, heartbeat): what
    they log or print is passed through but never captured, to avoid feedback loops.

    With ``forward_text`` False (log settings 'structured' or 'local'), nothing becomes an
    event: lines only pass through, and logging records are written to the real stderr, so
    that the output the agent keeps has them.
    """

    def __init__(
        self,
        emitter: EventEmitter,
        ignored_threads: set[int] | None = None,
        forward_text: bool = True,
    ) -> None:
        self.emitter = emitter
        self.ignored_threads = ignored_threads if ignored_threads is not None else set()
        self.forward_text = forward_text

    @contextmanager
    def step(self, step: str) -> Iterator[None]:
        root = logging.getLogger()
        real_out, real_err = sys.stdout, sys.stderr
        handler = _EventLogHandler(
            self.emitter, step, self.ignored_threads, None if self.forward_text else real_err
        )
        out = LineWriter(
            self.emitter, step, "stdout", real_out, self.ignored_threads, self.forward_text
        )
        err = LineWriter(
            self.emitter, step, "stderr", real_err, self.ignored_threads, self.forward_text
        )
        root.addHandler(handler)
        sys.stdout, sys.stderr = out, err
        try:
            yield
        finally:
            sys.stdout, sys.stderr = real_out, real_err
            root.removeHandler(handler)
            # A user thread may still hold these: from now on they only pass output through,
            # so nothing is attributed to a step (or a run) that has ended.
            handler.close_step()
            out.flush_partial(close=True)
            err.flush_partial(close=True)


class LineWriter(io.TextIOBase):
    """A text stream that passes writes through and emits one LOG event per complete line."""

    def __init__(
        self,
        emitter: EventEmitter,
        step: str,
        stream: str,
        real: TextIO,
        ignored_threads: set[int],
        emit_lines: bool = True,
    ) -> None:
        super().__init__()
        self._emit_lines = emit_lines
        self._emitter = emitter
        self._step = step
        self._stream = stream
        self._level = STREAM_LEVELS[stream]
        self._real = real
        self._ignored = ignored_threads
        self._partial: list[str] = []  # pieces of the current line (no quadratic +=)
        self._partial_len = 0
        # A very long line was sent in part: the next line sent continues it (and may begin
        # inside a secret the cut went through; the log policy masks that start).
        self._cut = False
        self._closed = False
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
        if not self._emit_lines or threading.get_ident() in self._ignored:
            return len(text)
        with critical():
            with self._lock:
                if self._closed:
                    return len(text)
                if "\n" not in text and "\r" not in text:
                    self._partial.append(text)
                    self._partial_len += len(text)
                    if self._partial_len <= MAX_MESSAGE_CHARS:
                        return len(text)
                    lines = ["".join(self._partial)]  # a very long line: emit what we have
                    self._partial, self._partial_len = [], 0
                    forced = True
                else:
                    # A carriage return ends a line too (progress bars rewrite one line).
                    joined = "".join(self._partial) + text
                    lines = joined.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                    last = lines.pop()
                    self._partial, self._partial_len = ([last], len(last)) if last else ([], 0)
                    forced = False
                continued, self._cut = self._cut, forced
            for i, line in enumerate(lines):
                if line:
                    self._emit(line, continued and i == 0)
        return len(text)

    def flush(self) -> None:
        with suppress(OSError, ValueError):
            self._real.flush()

    def flush_partial(self, close: bool = False) -> None:
        """Emit a last line that had no newline (called when the step ends)."""
        with critical():
            with self._lock:
                line = "".join(self._partial)
                self._partial, self._partial_len = [], 0
                continued, self._cut = self._cut, False
                emit = line and not self._closed
                self._closed = self._closed or close
            if emit:
                self._emit(line, continued)

    def _emit(self, line: str, continued: bool = False) -> None:
        data: dict[str, object] = {"stream": self._stream}
        if continued:
            data["continued"] = True  # the rest of a line too long for one event
        self._emitter.emit(
            EventType.LOG,
            step=self._step,
            level=self._level,
            message=line.rstrip("\r"),
            data=data,
        )


class _EventLogHandler(logging.Handler):
    def __init__(
        self,
        emitter: EventEmitter,
        step: str,
        ignored_threads: set[int],
        text_to: TextIO | None = None,
    ) -> None:
        super().__init__()
        # Set: records are written there as lines instead of becoming events.
        self._text_to = text_to
        self._emitter = emitter
        self._step = step
        self._ignored = ignored_threads
        self._closed = False

    def handle(self, record: logging.LogRecord) -> bool:
        # logging takes this handler's lock before emit(): that lock must not be held when a
        # cancel lands (see interrupt.py), so the whole of handle() is a critical section.
        with critical():
            return bool(super().handle(record))

    def close_step(self) -> None:
        with self.lock or nullcontext():
            self._closed = True

    def emit(self, record: logging.LogRecord) -> None:
        if (
            self._closed
            or record.thread in self._ignored
            or record.name.startswith(_IGNORED_LOGGERS)
        ):
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            if self._text_to is not None:
                with suppress(OSError, ValueError):
                    self._text_to.write(f"{record.levelname} {record.name}: {message}\n")
                    self._text_to.flush()
                return
            self._emitter.emit(
                EventType.LOG,
                step=self._step,
                level=record.levelname[:20],
                message=message,
                data={"logger": record.name},
            )
        except Exception:
            self.handleError(record)
