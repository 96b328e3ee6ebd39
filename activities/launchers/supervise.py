"""The tiny supervisor between the process launcher and a launched command.

Run by file path (``python supervise.py --exit-file F --child-pid-file G -- cmd ...``), never
with ``-m``: it must not import the ``activities`` package or anything outside the standard
library, because it runs for as long as the user's code and must start fast.

Why it exists: the agent that launched a process may be SIGKILLed and restarted. The new agent
adopts the process but is not its parent, so it can never learn the exit code from ``wait``.
The supervisor is the parent: it waits for the command and writes its return code to the exit
file (negative: killed by that signal, as ``subprocess`` reports it).
"""

import os
import signal
import subprocess
import sys


def _usage(message: str) -> int:
    print(f"tether supervise: {message}", file=sys.stderr, flush=True)
    print(
        "usage: supervise.py --exit-file FILE --child-pid-file FILE -- COMMAND [ARG ...]",
        file=sys.stderr,
        flush=True,
    )
    return 2


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        # The launcher then reports the exit code as unknown; nothing better to do here.
        print(f"tether supervise: cannot write {path}: {exc}", file=sys.stderr, flush=True)


def _ignore(signum: int, frame: object) -> None:
    # The launcher signals the whole process group, so the child receives the signal itself;
    # the supervisor only has to survive it to record the child's exit code.
    pass


def main(argv: list[str]) -> int:
    exit_file = child_pid_file = None
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] in ("--exit-file", "--child-pid-file") and i + 1 < len(argv):
            if argv[i] == "--exit-file":
                exit_file = argv[i + 1]
            else:
                child_pid_file = argv[i + 1]
            i += 2
        else:
            return _usage(f"unexpected argument {argv[i]!r}")
    command = argv[i + 1 :]
    if not exit_file or not child_pid_file or not command:
        return _usage("--exit-file, --child-pid-file and a command are required")

    # A Python-level handler, not SIG_IGN: exec() resets handled signals to their default in
    # the child, whereas an ignored signal would stay ignored there and the child could not
    # be stopped with SIGTERM. Installed before the child starts, so no signal finds the
    # supervisor unprotected once the child exists.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _ignore)

    try:
        # Same process group as the supervisor (the launcher made it a group leader), so a
        # signal to the group reaches the child and anything the child starts.
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"tether supervise: cannot start {command[0]!r}: {exc}", file=sys.stderr, flush=True)
        code = 126 if isinstance(exc, PermissionError) else 127
        _write_atomically(exit_file, f"{code}\n")
        return code
    _write_atomically(child_pid_file, f"{child.pid}\n")
    # wait() is retried across our no-op signal handlers (PEP 475).
    returncode = child.wait()
    _write_atomically(exit_file, f"{returncode}\n")
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
