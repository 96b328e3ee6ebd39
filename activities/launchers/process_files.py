"""What the process launcher keeps on disk for a label, and how it reads a process back from
the system: the record (process.json), /proc's view of a PID, the folder's lock, the
terminated marker, and reading a log's tail. The launcher's logic is in process.py."""

import fcntl
import hashlib
import io
import json
import os
import re
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from activities.launchers.base import LaunchKind

# Written by the first stop() of a process: which process, and when it was sent SIGTERM.
TERMINATED_FILE = "terminated"
LOG_BLOCK_BYTES = 64 * 1024
# log_tail reads at most this much from the end, so one gigantic line cannot exhaust memory.
LOG_TAIL_MAX_BYTES = 8 * 1024 * 1024

HAVE_PROC = Path("/proc/self/stat").exists()
UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Record:
    """The contents of process.json."""

    label: str
    kind: LaunchKind
    pid: int
    start_ticks: int | None
    started_at: datetime
    log_path: str


@dataclass(frozen=True)
class ProcStat:
    state: str
    pgrp: int
    start_ticks: int


def label_dir_name(label: str) -> str:
    """A file name for ``label``: readable, bounded, and unique thanks to the hash (two labels
    that differ only in unsafe characters would otherwise collide)."""
    digest = hashlib.sha256(label.encode()).hexdigest()[:10]
    return f"{UNSAFE_CHARS.sub('_', label)[:80]}-{digest}"


def read_proc_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces and ')', so
    # the remaining fields start after the *last* ')'. They start at field 3 (state).
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(state=fields[0], pgrp=int(fields[2]), start_ticks=int(fields[19]))
    except (IndexError, ValueError):
        return None


def terminated_at(directory: Path, record: Record) -> float | None:
    """When a stop first sent SIGTERM to the process of ``record`` (wall-clock seconds), if
    one did: the file names the process, so an earlier process of the label does not count."""
    try:
        found = json.loads((directory / TERMINATED_FILE).read_text())
        if found["pid"] == record.pid and found["start_ticks"] == record.start_ticks:
            return float(found["at"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def remove(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


def try_lock_file(directory: Path) -> int | None:
    """The folder's lock (see ``ProcessLauncher._lock_file``), or None at once if someone
    holds it or the folder is gone."""
    path = directory / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        current = os.stat(path)
        opened = os.fstat(fd)
        if (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
            return fd
    except OSError:  # held (BlockingIOError), or removed meanwhile
        pass
    os.close(fd)
    return None


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_tail(f: io.BufferedReader, lines: int) -> bytes:
    """Enough bytes from the end of ``f`` to hold its last ``lines`` lines, read backwards in
    blocks: logs of long-running processes can be large."""
    end = f.seek(0, os.SEEK_END)
    position = end
    chunks: list[bytes] = []
    newlines = 0
    # lines + 1 newlines guarantee that the first of the wanted lines is complete (the file
    # usually ends with one).
    while position > 0 and newlines <= lines and end - position < LOG_TAIL_MAX_BYTES:
        size = min(LOG_BLOCK_BYTES, position)
        position -= size
        f.seek(position)
        chunk = f.read(size)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    if position > 0:
        # Drop the partial first line (it may also start inside a multi-byte character).
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else data
    return data
