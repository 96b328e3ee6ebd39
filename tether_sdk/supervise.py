"""The tiny supervisor between the process launcher and a launched command.

Run by file path (``python -I -S supervise.py --exit-file F --child-pid-file G -- cmd ...``),
never with ``-m``: it must not import anything outside the standard library, because it runs
for as long as the user's code and must start fast. The fork server (``forkserver.py``) imports
it for the same work in a forked supervisor.

Why it exists: the agent that launched a process may be SIGKILLed and restarted. The new agent
adopts the process but is not its parent, so it can never learn the exit code from ``wait``.
The supervisor is the parent: it waits for the command and writes its return code to the exit
file (negative: killed by that signal, as ``subprocess`` reports it).

With ``--log-file F --max-log-bytes N`` it also caps the command's output file (its stdout,
opened for appending by the launcher): once the file exceeds N bytes it is cut, in place, to
its latest half (from a line start), under a one-line notice.
"""

import os
import signal
import subprocess
import sys
import threading
import time

# How often the output file's size is checked.
LOG_CHECK_SECONDS = 1.0


def _usage(message: str) -> int:
    print(f"tether supervise: {message}", file=sys.stderr, flush=True)
    print(
        "usage: supervise.py --exit-file FILE --child-pid-file FILE "
        "[--log-file FILE --max-log-bytes N] -- COMMAND [ARG ...]",
        file=sys.stderr,
        flush=True,
    )
    return 2


def write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        # The launcher then reports the exit code as unknown; nothing better to do here.
        print(f"tether supervise: cannot write {path}: {exc}", file=sys.stderr, flush=True)


def ignore_signal(signum: int, frame: object) -> None:
    # The launcher signals the whole process group, so the child receives the signal itself;
    # the supervisor only has to survive it to record the child's exit code.
    pass


def trim_log(path: str, max_bytes: int) -> None:
    """Keep the latest half of the file. The command keeps writing meanwhile: its descriptor
    appends (O_APPEND), so after the truncation it writes at the new end; what it appends
    while the kept part is copied is copied too. Only output written in the instant between
    the last size check and the truncation can be lost."""
    fd = os.open(path, os.O_RDWR)  # not O_APPEND: pwrite must write at offset 0
    try:
        size = os.fstat(fd).st_size
        if size <= max_bytes:
            return
        keep = max_bytes // 2
        kept = os.pread(fd, keep, size - keep)
        newline = kept.find(b"\n")
        if newline >= 0:
            kept = kept[newline + 1 :]  # start at a line start
        data = (
            f"--- tether: earlier output removed (output.log is capped at {max_bytes} bytes) ---\n"
        ).encode() + kept
        if len(data) >= size:
            return  # a cap too small to hold the notice: nothing to gain
        length = os.pwrite(fd, data, 0)
        while True:
            now = os.fstat(fd).st_size
            if now <= size:
                break
            appended = os.pread(fd, now - size, size)  # written meanwhile: keep it too
            length += os.pwrite(fd, appended, length)
            size = now
        os.ftruncate(fd, length)
    finally:
        os.close(fd)


def cap_log(path: str, max_bytes: int) -> None:
    while True:
        time.sleep(LOG_CHECK_SECONDS)
        try:
            if os.stat(path).st_size > max_bytes:
                trim_log(path, max_bytes)
        except OSError:
            pass  # removed, or not writable: nothing to cap now


def main(argv: list[str]) -> int:
    options = {"--exit-file": "", "--child-pid-file": "", "--log-file": "", "--max-log-bytes": ""}
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] in options and i + 1 < len(argv):
            options[argv[i]] = argv[i + 1]
            i += 2
        else:
            return _usage(f"unexpected argument {argv[i]!r}")
    exit_file = options["--exit-file"]
    child_pid_file = options["--child-pid-file"]
    command = argv[i + 1 :]
    if not exit_file or not child_pid_file or not command:
        return _usage("--exit-file, --child-pid-file and a command are required")
    log_file = options["--log-file"]
    try:
        max_log_bytes = int(options["--max-log-bytes"] or 0)
    except ValueError:
        return _usage("--max-log-bytes takes a number of bytes")

    # A Python-level handler, not SIG_IGN: exec() resets handled signals to their default in
    # the child, whereas an ignored signal would stay ignored there and the child could not
    # be stopped with SIGTERM. Installed before the child starts, so no signal finds the
    # supervisor unprotected once the child exists. A signal in the instant between Popen's
    # fork and its exec runs this no-op in the child and is lost; the launcher's SIGKILL
    # after its grace period still ends the run (the forked warm path blocks instead).
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, ignore_signal)

    try:
        # Same process group as the supervisor (the launcher made it a group leader), so a
        # signal to the group reaches the child and anything the child starts.
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"tether supervise: cannot start {command[0]!r}: {exc}", file=sys.stderr, flush=True)
        code = 126 if isinstance(exc, PermissionError) else 127
        write_atomically(exit_file, f"{code}\n")
        return code
    write_atomically(child_pid_file, f"{child.pid}\n")
    if log_file and max_log_bytes > 0:
        threading.Thread(target=cap_log, args=(log_file, max_log_bytes), daemon=True).start()
    # wait() is retried across our no-op signal handlers (PEP 475).
    returncode = child.wait()
    write_atomically(exit_file, f"{returncode}\n")
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
