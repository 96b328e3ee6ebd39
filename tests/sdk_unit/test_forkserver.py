"""The fork server of warm launches, in a real process of its own: the
workers it forks behave like cold ones where the launcher looks (own process group, output
file, child_pid and exit_code files, signals) and share no random state."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import children, wait_until
from tether_sdk.forkserver import SpawnRequest, SpawnUncertain, spawn

from .standin_control_plane import StandInControlPlane

SERVER = textwrap.dedent(
    """
    import os, random, sys, time
    from tether_sdk.forkserver import ForkServer

    def target(request):
        print("worker", os.getpid(), "env", os.environ.get("RUN_ID"), "random", random.random())
        sys.stdout.flush()
        for i in range(int(request.args.get("lines", 0))):
            print(f"line {i:06d} " + "x" * 90)
        sys.stdout.flush()
        time.sleep(float(request.args.get("sleep", 0)))
        return int(request.args.get("code", 0))

    if os.environ.get("SLOW_FORK"):
        # Widens the window between a fork and the new process's own signal set-up.
        os.register_at_fork(after_in_child=lambda: time.sleep(float(os.environ["SLOW_FORK"])))
    ForkServer(sys.argv[1], target).serve()
    """
)


class Server(str):
    """The fork server's socket path, with its PID."""

    pid: int


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path, {})


@pytest.fixture
def slow_fork_server(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path, {"SLOW_FORK": "0.5"})


def _serve(tmp_path: Path, env: dict[str, str]) -> Iterator[Server]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    socket_path = Server(tmp_path / "fork.sock")
    proc = subprocess.Popen([sys.executable, str(script), socket_path], env={**os.environ, **env})
    socket_path.pid = proc.pid
    try:
        wait_until(lambda: os.path.exists(socket_path), timeout=10, what="the fork server")
        yield socket_path
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            # Seen once in CI, under load, with the cause not found: end it rather than
            # leave a server behind (this fixture's teardown checks nothing).
            proc.kill()
            proc.wait(5)


def request(tmp_path: Path, name: str, **args: object) -> SpawnRequest:
    folder = tmp_path / name
    folder.mkdir()
    return SpawnRequest(
        label=name,
        env={"RUN_ID": name, "PATH": os.environ.get("PATH", "")},
        cwd=str(folder),
        output_path=str(folder / "output.log"),
        exit_file=str(folder / "exit_code"),
        child_pid_file=str(folder / "child_pid"),
        args=dict(args),
    )


def exit_code(req: SpawnRequest) -> int | None:
    try:
        return int(Path(req.exit_file).read_text())
    except (OSError, ValueError):
        return None


def test_workers_are_set_up_like_cold_ones(server: str, tmp_path: Path) -> None:
    first, second = request(tmp_path, "r1", code=3), request(tmp_path, "r2")
    pids = [spawn(server, first), spawn(server, second)]
    for req in (first, second):
        wait_until(lambda r=req: exit_code(r) is not None, timeout=10, what=req.label)
    assert exit_code(first) == 3 and exit_code(second) == 0
    outputs = [Path(r.output_path).read_text().split() for r in (first, second)]
    assert [o[3] for o in outputs] == ["r1", "r2"]  # each its own env
    assert outputs[0][5] != outputs[1][5]  # and its own random sequence
    for pid, req in zip(pids, (first, second), strict=True):
        worker = int(Path(req.child_pid_file).read_text())
        assert worker != pid and str(worker) == Path(req.output_path).read_text().split()[1]


def test_output_is_capped_and_exited_supervisors_are_reaped(server: Server, tmp_path: Path) -> None:
    noisy = request(tmp_path, "noisy", lines=2000, sleep=2.5)  # 200 kB, then time to trim
    noisy.max_log_bytes = 20_000
    spawn(server, noisy)
    wait_until(lambda: exit_code(noisy) is not None, timeout=20, what="the noisy worker")
    text = Path(noisy.output_path).read_text()
    assert text.startswith("--- tether: earlier output removed (output.log is capped at 20000")
    assert len(text) <= 20_000 and text.rstrip().splitlines()[-1].startswith("line 001999")
    # Its supervisor is reaped by the server (a zombie would hold its PID and CPU time).
    wait_until(lambda: children(server.pid) == [], timeout=5, what="no child left")


def test_a_signal_to_the_group_ends_the_worker_and_is_recorded(server: str, tmp_path: Path) -> None:
    slow = request(tmp_path, "slow", sleep=30)
    supervisor = spawn(server, slow)
    wait_until(lambda: os.path.exists(slow.child_pid_file), timeout=10, what="the worker")
    assert os.getpgid(supervisor) == supervisor  # its own group, as start_new_session makes
    started = time.monotonic()
    os.killpg(supervisor, signal.SIGTERM)
    wait_until(lambda: exit_code(slow) is not None, timeout=10, what="the exit code")
    assert exit_code(slow) == -signal.SIGTERM and time.monotonic() - started < 5


def test_a_signal_right_after_the_start_is_not_lost(slow_fork_server: str, tmp_path: Path) -> None:
    # The launcher may stop a run the moment child_pid exists, before the worker has set its
    # own signal handling (half a second here): the signal waits for it and ends the worker.
    slow = request(tmp_path, "early", sleep=30)
    supervisor = spawn(slow_fork_server, slow)
    wait_until(lambda: os.path.exists(slow.child_pid_file), timeout=10, what="the worker")
    os.killpg(supervisor, signal.SIGTERM)
    wait_until(lambda: exit_code(slow) is not None, timeout=10, what="the exit code")
    assert exit_code(slow) == -signal.SIGTERM


def test_a_warm_run_worker_of_a_code_server_reports_what_a_cold_one_does(
    code_server: Any, tmp_path: Path
) -> None:
    socket_path = str(tmp_path / "warm.sock")
    code_server("--module", "tether_sdk.examples.quickstart", "--fork-socket", socket_path)
    wait_until(lambda: os.path.exists(socket_path), timeout=10, what="the fork socket")
    seen = []
    for how in ("cold", "warm"):
        with StandInControlPlane(run_id=f"run-{how}", job="etl") as cp:
            cp.run["run_config"] = {"source": "s3://b/o.csv", "rows": 3}
            env = {
                "TETHER_RUN_ID": cp.run_id,
                "TETHER_CONTROL_PLANE_URL": cp.url,
                "TETHER_RUN_TOKEN": cp.token,
                "PATH": os.environ.get("PATH", ""),
            }
            req = request(tmp_path, how)
            req.env = env
            if how == "cold":
                cold = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "tether_cli.main",
                        "run-worker",
                        "--module",
                        "tether_sdk.examples.quickstart",
                    ],
                    env={**os.environ, **env},
                    capture_output=True,
                    timeout=60,
                )
                assert cold.returncode == 0, cold.stderr
            else:
                spawn(socket_path, req)
                wait_until(lambda r=req: exit_code(r) is not None, timeout=30, what="warm run")
                assert exit_code(req) == 0, Path(req.output_path).read_text()
            seen.append([(e["type"], e.get("step")) for _, e in sorted(cp.events.items())])
    cold_events, warm_events = seen
    assert warm_events == cold_events
    assert warm_events[0][0] == "RUN_START" and warm_events[-1][0] == "RUN_SUCCESS"
    assert ("STEP_SUCCESS", "extract") in warm_events and ("STEP_SUCCESS", "load") in warm_events


def test_a_client_that_hangs_up_does_not_stop_the_server(server: Server, tmp_path: Path) -> None:
    import socket

    for payload in (b'{"label": "half', b"not json\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(server))
            client.sendall(payload)
    after = request(tmp_path, "after")
    spawn(server, after)
    wait_until(lambda: exit_code(after) == 0, timeout=10, what="a worker after the hang-ups")


def test_an_answer_that_never_comes_is_uncertain_not_refused(tmp_path: Path) -> None:
    """No answer means a worker may run: the launcher must not start a second one cold. A
    refusal (nothing started) is an OSError, which falls back to a cold start."""
    import socket
    import threading

    path = str(tmp_path / "mute.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def hang_up() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    with pytest.raises(SpawnUncertain):
        spawn(path, request(tmp_path, "mute"), timeout=5)
    listener.close()
    with pytest.raises(OSError):
        spawn(str(tmp_path / "nobody.sock"), request(tmp_path, "nobody"))


def test_the_socket_answers_as_soon_as_the_fork_server_is_forked(tmp_path: Path) -> None:
    path = tmp_path / "early.sock"
    script = tmp_path / "early.py"
    script.write_text(
        "import os, sys\n"
        "from tether_sdk.forkserver import start_in_child\n"
        "pid, fd = start_in_child(sys.argv[1], lambda request: 0)\n"
        "print(os.path.exists(sys.argv[1]), flush=True)\n"
        "os.close(fd)\n"
        "os.waitpid(pid, 0)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "True", done.stderr
    assert not path.exists()  # removed when the server ended with its code server


WARMED_SERVER = textwrap.dedent(
    """
    import gc, os, sys, threading
    from tether_sdk.forkserver import start_in_child

    warmed = []

    def warm_up():
        if sys.argv[2] == "fails":
            raise RuntimeError("no warm-up today")
        warmed.append(True)
        if sys.argv[2] == "leaves-a-thread":
            threading.Thread(target=threading.Event().wait, name="lingering", daemon=True).start()

    def target(request):
        # What the warm-up left is the worker's; the inherited heap is out of the collector's
        # sight (frozen), so the worker's collections do not walk it.
        return (10 if warmed else 20) + (1 if gc.get_freeze_count() > 0 else 0)

    pid, fd = start_in_child(sys.argv[1], target, warm_up)
    sys.stdin.read()
    os.close(fd)
    os.waitpid(pid, 0)
    """
)


@pytest.mark.parametrize(
    ("mode", "code", "said"),
    [
        ("works", 11, ""),
        ("fails", 21, "the warm-up failed, runs pay their first use: RuntimeError"),
        ("leaves-a-thread", 11, "the warm-up left threads running: lingering"),
    ],
)
def test_workers_have_what_the_warm_up_left_and_a_failed_one_is_said(
    tmp_path: Path, mode: str, code: int, said: str
) -> None:
    script = tmp_path / "warmed.py"
    script.write_text(WARMED_SERVER)
    socket_path = tmp_path / "warm.sock"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(socket_path), mode],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: socket_path.exists(), timeout=10, what="the fork server")
        req = request(tmp_path, mode)
        spawn(str(socket_path), req)
        wait_until(lambda: exit_code(req) is not None, timeout=10, what="the worker")
        assert exit_code(req) == code
    finally:
        _, stderr = proc.communicate("", timeout=10)
    assert said in stderr
