"""The process launcher on real processes: start, adopt, exit codes, signals, env, identity.

Every process a test starts is stopped by handle (process group of the supervisor) at the end
of that test, through the ``launcher`` fixture."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from activities.launchers.base import Handle, Inspection, LaunchError, LaunchKind, LaunchSpec
from activities.launchers.process import ProcessLauncher, label_dir_name
from tests.agent_unit.support import Tracked
from tests.support import REPO, children, command_pid
from tether_api.locations import CodeLocationSpec

PY = sys.executable


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def launcher(state_dir: Path) -> Iterator[Tracked]:
    handles: list[Handle] = []
    tracked = Tracked(state_dir, handles)
    try:
        yield tracked
    finally:
        # By handle: a SIGKILL to the supervisor's process group, nothing by name. Through
        # the first launcher, the supervisors' parent, so none is left as a zombie.
        for handle in handles:
            tracked.stop(handle, grace_seconds=0)


def python_command(code: str) -> CodeLocationSpec:
    """A "code server" whose command is an arbitrary Python snippet."""
    return CodeLocationSpec(module="unused", command=[PY, "-c", code])


def spec(
    label: str,
    location: CodeLocationSpec,
    kind: LaunchKind = "code-server",
    env: dict[str, str] | None = None,
) -> LaunchSpec:
    return LaunchSpec(label=label, kind=kind, location=location, env=env or {})


def wait_for(condition: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def wait_exited(launcher: ProcessLauncher, handle: Handle) -> Inspection:
    result: list[Inspection] = []

    def exited() -> bool:
        inspection = launcher.inspect(handle)
        result.append(inspection)
        return not inspection.running

    wait_for(exited, what=f"{handle.label} to exit")
    return result[-1]


SLEEP = python_command("import time; print('ready', flush=True); time.sleep(60)")


def wait_ready(launcher: ProcessLauncher, handle: Handle) -> None:
    wait_for(lambda: "ready" in launcher.log_tail(handle, 5), what="'ready' in the log")


def test_code_server_serves_health(launcher: Tracked) -> None:
    handle = launcher.start(
        spec("wf-code-1", CodeLocationSpec(module="tether_sdk.examples.quickstart"))
    )
    assert not handle.adopted and handle.pid and handle.launcher == "process"
    wait_for(lambda: launcher.inspect(handle).address is not None, what="the port file")
    inspection = launcher.inspect(handle)
    assert inspection.running and inspection.address
    response = httpx.get(inspection.address + "/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["loaded"] is True
    tail = launcher.log_tail(handle, 20)
    assert tail[0].startswith("--- tether: starting code-server wf-code-1 at ")
    assert any(
        "tether code-server: serving module tether_sdk.examples.quickstart" in line for line in tail
    )


def test_adopt_and_stop_from_restarted_agent(launcher: Tracked, state_dir: Path) -> None:
    handle = launcher.start(spec("wf-adopt", SLEEP))
    again = launcher.start(spec("wf-adopt", SLEEP))
    assert again.adopted and again.pid == handle.pid

    # A restarted agent: a new instance over the same state directory, not the parent.
    restarted = ProcessLauncher(state_dir)
    found = restarted.find("wf-adopt")
    assert found is not None and found.pid == handle.pid and found.started_at == handle.started_at
    assert restarted.start(spec("wf-adopt", SLEEP)).adopted
    wait_ready(restarted, found)
    stopped = restarted.stop(found, grace_seconds=5)
    # The plain sleeper dies of the SIGTERM; the supervisor recorded it.
    assert stopped == Inspection(running=False, exit_code=-signal.SIGTERM)
    assert not launcher.inspect(handle).running
    assert restarted.find("wf-adopt") is None
    assert restarted.stop(found, grace_seconds=0).running is False  # idempotent

    restarted.cleanup(found)
    assert launcher.inspect(handle) == Inspection(running=False, found=False)
    restarted.cleanup(found)  # idempotent


def test_exit_code_and_output(launcher: Tracked) -> None:
    handle = launcher.start(
        spec("wf-exit", python_command("import sys; print('bye'); sys.exit(3)"))
    )
    assert wait_exited(launcher, handle) == Inspection(running=False, exit_code=3)
    assert launcher.log_tail(handle, 1) == ["bye"]
    assert launcher.log_tail(handle, 2)[0].startswith("--- tether: starting code-server")
    assert launcher.find("wf-exit") is None
    # Still recorded: a one-shot launcher (the run worker) finds it and does not start again.
    exited = launcher.find("wf-exit", include_exited=True)
    assert exited is not None and exited.pid == handle.pid

    # A new start under the same label replaces the exited one and appends to the log.
    second = launcher.start(spec("wf-exit", python_command("print('again')")))
    assert not second.adopted and second.pid != handle.pid
    assert wait_exited(launcher, second).exit_code == 0
    assert launcher.log_tail(second, 1) == ["again"]
    assert "bye" in launcher.log_tail(second, 10)
    # The old handle no longer describes what runs under the label.
    assert launcher.inspect(handle) == Inspection(running=False, exit_code=None)


def test_run_worker_kind_runs_the_run_worker(launcher: Tracked) -> None:
    # Without TETHER_RUN_ID etc. the run worker's argument parser exits with 2: proves the
    # command and that the agent's environment did not leak these in.
    handle = launcher.start(
        spec("wf-run", CodeLocationSpec(module="tether_sdk.examples.quickstart"), "run-worker")
    )
    assert wait_exited(launcher, handle).exit_code == 2
    assert any("--run-id" in line for line in launcher.log_tail(handle, 10))
    assert launcher.inspect(handle).address is None


AGENT = """
import sys, time
from pathlib import Path
from activities.launchers.base import LaunchSpec
from activities.launchers.process import ProcessLauncher
from tether_api.locations import CodeLocationSpec

location = CodeLocationSpec(module="unused", command=[sys.executable, "-c", sys.argv[2]])
spec = LaunchSpec(label="wf-survivor", kind="code-server", location=location)
print(ProcessLauncher(Path(sys.argv[1])).start(spec).pid, flush=True)
time.sleep(60)
"""


def test_process_survives_a_killed_agent(state_dir: Path) -> None:
    agent = subprocess.Popen(
        [
            PY,
            "-c",
            AGENT,
            str(state_dir),
            "import time; print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    restarted = ProcessLauncher(state_dir)
    handle = None
    try:
        assert agent.stdout is not None
        pid = int(agent.stdout.readline())
        agent.kill()  # SIGKILL: the agent leaves without stopping anything
        agent.wait(timeout=10)
        agent.stdout.close()
        handle = restarted.find("wf-survivor")
        assert handle is not None and handle.pid == pid
        assert restarted.inspect(handle).running
        wait_ready(restarted, handle)
        # Not the supervisor's parent, yet the child's exit code is known.
        assert restarted.stop(handle, grace_seconds=5) == Inspection(
            running=False, exit_code=-signal.SIGTERM
        )
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(timeout=10)
        if handle is None:
            handle = restarted.find("wf-survivor")
        if handle is not None:
            restarted.stop(handle, grace_seconds=0)


def test_killed_child_is_recorded_by_the_supervisor(launcher: Tracked, state_dir: Path) -> None:
    handle = launcher.start(spec("wf-kill", SLEEP))
    child = command_pid(handle.pid)
    os.kill(child, signal.SIGKILL)
    # Inspected by an instance that is not the supervisor's parent: only the exit file knows.
    other = ProcessLauncher(state_dir)
    assert wait_exited(other, handle) == Inspection(running=False, exit_code=-signal.SIGKILL)
    assert launcher.inspect(handle).exit_code == -signal.SIGKILL


def test_child_of_a_killed_supervisor_is_still_found_and_stopped(
    launcher: Tracked, state_dir: Path
) -> None:
    handle = launcher.start(spec("wf-orphan", SLEEP))
    child = command_pid(handle.pid)
    assert handle.pid is not None
    os.kill(handle.pid, signal.SIGKILL)  # the supervisor alone, not its group
    other = ProcessLauncher(state_dir)
    # The user's code still runs: reported as running, and stop() must reach it.
    assert launcher.inspect(handle).running and other.inspect(handle).running
    assert other.find("wf-orphan") is not None
    assert other.stop(handle, grace_seconds=5).running is False
    wait_for(lambda: _gone(child), what="the child to die")


def _gone(pid: int) -> bool:
    """Exited: no /proc entry, or a zombie its new parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def test_stop_kills_a_child_that_ignores_sigterm(launcher: Tracked) -> None:
    handle = launcher.start(
        spec(
            "wf-stubborn",
            python_command(
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)"
            ),
        )
    )
    wait_ready(launcher, handle)
    began = time.monotonic()
    inspection = launcher.stop(handle, grace_seconds=0.5)
    assert 0.5 <= time.monotonic() - began < 5
    assert inspection == Inspection(running=False, exit_code=-signal.SIGKILL)
    assert ProcessLauncher(launcher.state_dir).inspect(handle).exit_code == -signal.SIGKILL


def test_sigterm_reaches_the_child(launcher: Tracked) -> None:
    handle = launcher.start(
        spec(
            "wf-term",
            python_command(
                "import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
                "print('ready', flush=True)\n"
                "time.sleep(60)\n"
            ),
        )
    )
    wait_ready(launcher, handle)
    assert launcher.stop(handle, grace_seconds=5) == Inspection(running=False, exit_code=143)


def test_environment(launcher: Tracked, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TETHER_AGENT_TOKEN", "secret")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret too")
    monkeypatch.setenv("AGENT_HOST_VARIABLE", "inherited")
    names = [
        "TETHER_AGENT_TOKEN",
        "TEMPORAL_API_KEY",
        "AGENT_HOST_VARIABLE",
        "FROM_LOCATION",
        "OVERRIDDEN",
        "TETHER_MODULE",
        "TETHER_WORKING_DIRECTORY",
        "TETHER_CODE_SERVER_PORT",
        "TETHER_PORT_FILE",
    ]
    location = CodeLocationSpec(
        module="my.module",
        working_directory=str(tmp_path),
        env={"FROM_LOCATION": "location", "OVERRIDDEN": "location"},
        command=[
            PY,
            "-c",
            f"import os; [print(n, os.environ.get(n)) for n in {names!r}]; print(os.getcwd())",
        ],
    )
    handle = launcher.start(spec("wf-env", location, env={"OVERRIDDEN": "spec"}))
    assert wait_exited(launcher, handle).exit_code == 0
    tail = launcher.log_tail(handle, len(names) + 1)
    assert tail == [
        "TETHER_AGENT_TOKEN None",
        "TEMPORAL_API_KEY None",
        "AGENT_HOST_VARIABLE inherited",
        "FROM_LOCATION location",
        "OVERRIDDEN spec",
        "TETHER_MODULE my.module",
        f"TETHER_WORKING_DIRECTORY {tmp_path}",
        "TETHER_CODE_SERVER_PORT 0",
        f"TETHER_PORT_FILE {launcher.state_dir / 'processes' / label_dir_name('wf-env') / 'port'}",
        str(tmp_path),
    ]


def test_missing_working_directory_or_python(launcher: Tracked, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(LaunchError, match="working directory") as info:
        launcher.start(spec("wf-bad", CodeLocationSpec(module="m", working_directory=str(missing))))
    assert str(missing) in str(info.value)
    with pytest.raises(LaunchError, match="python executable") as info:
        launcher.start(spec("wf-bad", CodeLocationSpec(module="m", python_executable=str(missing))))
    assert str(missing) in str(info.value)
    with pytest.raises(LaunchError, match="not found on the PATH"):
        launcher.start(spec("wf-bad", CodeLocationSpec(module="m", command=["no-such-tool-x"])))
    # Nothing was spawned, nothing was created.
    assert launcher.handles == []
    assert not (launcher.state_dir / "processes").exists()
    assert launcher.find("wf-bad") is None


def test_pid_reuse_is_detected(launcher: Tracked) -> None:
    directory = launcher.state_dir / "processes" / label_dir_name("wf-reused")
    directory.mkdir(parents=True)
    # A live process (this test's) under the recorded PID, but with another start time: the
    # recorded process is gone and its PID was reused.
    record = {
        "label": "wf-reused",
        "kind": "code-server",
        "pid": os.getpid(),
        "start_ticks": 1,
        "started_at": "2024-01-01T00:00:00+00:00",
        "log_path": str(directory / "output.log"),
    }
    (directory / "process.json").write_text(json.dumps(record))
    assert launcher.find("wf-reused") is None
    stale = Handle(
        label="wf-reused",
        kind="code-server",
        launcher="process",
        pid=os.getpid(),
        started_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert not launcher.inspect(stale).running
    assert launcher.stop(stale, grace_seconds=0).running is False  # must not signal us
    handle = launcher.start(spec("wf-reused", SLEEP))
    assert not handle.adopted and handle.pid != os.getpid()
    assert launcher.inspect(handle).running


def test_concurrent_starts_make_one_process(launcher: Tracked) -> None:
    barrier = threading.Barrier(8)
    handles: list[Handle] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            handles.append(launcher.start(spec("wf-race", SLEEP)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(handles) == 8
    assert len({h.pid for h in handles}) == 1
    assert sum(not h.adopted for h in handles) == 1
    wait_ready(launcher, handles[0])
    headers = [line for line in launcher.log_tail(handles[0], 50) if line.startswith("---")]
    assert len(headers) == 1


def test_log_tail_reads_large_logs_from_the_end(launcher: Tracked, tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with open(log, "wb") as f:
        for i in range(200_000):
            f.write(f"line {i} {'x' * 20}\n".encode())
        f.write("caf\u00e9 \xff".encode() + b"\xff\n" + b"no newline at the end")
    handle = Handle(
        label="wf-log",
        kind="run-worker",
        launcher="process",
        log_path=str(log),
        started_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    tail = launcher.log_tail(handle, 3)
    assert tail == [f"line 199999 {'x' * 20}", "caf\u00e9 \xff\ufffd", "no newline at the end"]
    assert len(launcher.log_tail(handle, 10_000)) == 10_000
    assert launcher.log_tail(handle, 0) == []
    missing = handle.model_copy(update={"log_path": str(tmp_path / "none.log")})
    assert launcher.log_tail(missing, 5) == []


def test_stop_all_stops_everything_still_running(launcher: Tracked) -> None:
    sleeper = python_command("import time; time.sleep(60)")
    running = [launcher.start(spec(f"wf-all-{i}", sleeper)) for i in range(2)]
    exited = launcher.start(spec("wf-all-done", python_command("pass")))
    wait_exited(launcher, exited)

    assert launcher.stop_all(grace_seconds=1) == 2
    assert all(not launcher.inspect(h).running for h in running)
    assert launcher.labels() and all(launcher.find(label) is None for label in launcher.labels())


def test_finished_runs_leave_no_zombie_behind(launcher: Tracked) -> None:
    """The agent is its supervisors' parent: once a run's outcome is recorded (finished),
    the supervisor, which exits right after recording its child's exit, is reaped, however
    early the watch saw the exit file."""
    # A run worker with no run to serve: it exits at once (code 2), which is all this needs.
    handles = [
        launcher.start(spec(f"run:zombie-{i}", python_command("unused"), "run-worker"))
        for i in range(3)
    ]
    supervisors = {handle.pid for handle in handles}
    for handle in handles:
        assert not wait_exited(launcher, handle).running
        launcher.finished(handle, False)
    mine = dict(children(os.getpid()))
    assert not [pid for pid in supervisors if mine.get(pid) == "Z"], mine
    assert not supervisors & set(mine), "every supervisor of a finished run is reaped"


def test_a_repeated_stop_counts_the_grace_from_the_first_sigterm(
    launcher: Tracked, state_dir: Path
) -> None:
    """An agent killed in the middle of a stop, and the stop retried by the next one: the
    process is killed ``grace`` after the first SIGTERM, not after a second one (which it
    never gets: a run worker would take it for an operator's insistence)."""
    handle = launcher.start(
        spec(
            "wf-twice",
            python_command(
                "import signal, time\n"
                "signal.signal(signal.SIGTERM, lambda *_: print('got SIGTERM', flush=True))\n"
                "print('ready', flush=True)\n"
                "while True: time.sleep(0.05)\n"
            ),
        )
    )
    wait_ready(launcher, handle)
    first_agent = subprocess.Popen(
        [
            PY,
            "-c",
            "import sys; from activities.launchers.process import ProcessLauncher as L; "
            "launcher = L(sys.argv[1]); launcher.stop(launcher.find('wf-twice'), 4)",
            str(state_dir),
        ],
        cwd=REPO,
    )
    try:
        wait_for(lambda: "got SIGTERM" in launcher.log_tail(handle, 5), what="the SIGTERM")
        signaled = time.monotonic()
        time.sleep(2)
    finally:
        first_agent.kill()
        first_agent.wait()
    stopped = ProcessLauncher(state_dir).stop(handle, grace_seconds=4)
    killed_after = time.monotonic() - signaled
    assert stopped == Inspection(running=False, exit_code=-signal.SIGKILL)
    # 4 s after the first SIGTERM (a grace counted from the retry would make it 6 s).
    assert 3.5 <= killed_after < 5.2, killed_after
    assert launcher.log_tail(handle, 10).count("got SIGTERM") == 1
