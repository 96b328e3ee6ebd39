"""Retention of finished processes' folders, on real processes of the process launcher: what
the sweep removes (expired, then oldest first beyond the size bound), what it never touches
(running processes, folders another launcher holds the lock of, runs whose outcome is not
recorded yet), and the supervisor's cap of a running process's output.log.

Every process a test starts is stopped by handle at the end of that test (the ``launcher``
fixture); a helper process is killed through its own Popen."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from activities.launchers.base import Handle, Inspection, LaunchKind, LaunchSpec
from activities.launchers.process import ProcessLauncher, label_dir_name
from activities.launchers.retention import MB, OutputRetention, sweep_periodically
from tests.agent_unit.support import Tracked
from tether_api.locations import CodeLocationSpec

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def launchers(state_dir: Path) -> Iterator[list[Tracked]]:
    """Make launchers with ``launchers.append(Tracked(...))``; all their processes are
    stopped at the end, by handle."""
    made: list[Tracked] = []
    try:
        yield made
    finally:
        for launcher in made:
            for handle in launcher.handles:
                launcher.stop(handle, grace_seconds=0)


@pytest.fixture
def launcher(state_dir: Path, launchers: list[Tracked]) -> Tracked:
    launchers.append(Tracked(state_dir))
    return launchers[-1]


def python_command(code: str) -> CodeLocationSpec:
    return CodeLocationSpec(module="unused", command=[PY, "-c", code])


def spec(label: str, location: CodeLocationSpec, kind: LaunchKind = "code-server") -> LaunchSpec:
    return LaunchSpec(label=label, kind=kind, location=location)


def wait_for(condition: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def wait_exited(launcher: ProcessLauncher, handle: Handle) -> Inspection:
    wait_for(lambda: not launcher.inspect(handle).running, what=f"{handle.label} to exit")
    return launcher.inspect(handle)


def folder(launcher: ProcessLauncher, label: str) -> Path:
    return launcher.state_dir / "processes" / label_dir_name(label)


def age(launcher: ProcessLauncher, label: str, hours: float) -> None:
    """Make everything in the label's folder look ``hours`` old."""
    when = time.time() - hours * 3600
    for path in folder(launcher, label).iterdir():
        os.utime(path, (when, when), follow_symlinks=False)


def finished_server(launcher: ProcessLauncher, label: str, output_bytes: int = 0) -> Handle:
    """A 'code server' that prints ``output_bytes`` bytes and exits."""
    code = f"import sys; sys.stdout.write('x' * {output_bytes} + '\\n'); print('bye')"
    handle = launcher.start(spec(label, python_command(code)))
    assert wait_exited(launcher, handle).exit_code == 0
    return handle


SLEEP = python_command("import time; print('ready', flush=True); time.sleep(60)")


def test_expired_folders_are_removed_running_ones_kept(launcher: Tracked) -> None:
    old = finished_server(launcher, "wf-old")
    finished_server(launcher, "wf-recent")
    running = launcher.start(spec("wf-running", SLEEP))
    wait_for(lambda: "ready" in launcher.log_tail(running, 5), what="'ready' in the log")
    for label in ("wf-old", "wf-running"):
        age(launcher, label, 200)

    assert launcher.sweep(OutputRetention(keep_hours=168)) == ["wf-old"]

    assert not folder(launcher, "wf-old").exists()
    assert launcher.find("wf-old", include_exited=True) is None
    assert launcher.inspect(old).found is False
    assert launcher.find("wf-recent", include_exited=True) is not None
    # A running process's folder stays, whatever its age, and so does the process.
    assert launcher.inspect(running).running
    assert "ready" in launcher.log_tail(running, 5)
    # A launcher that did not start it (another agent on the same state directory) agrees.
    assert ProcessLauncher(launcher.state_dir).sweep(OutputRetention(keep_hours=0)) == ["wf-recent"]
    assert launcher.inspect(running).running
    assert sorted(launcher.labels()) == ["wf-running"]


def test_size_bound_removes_the_oldest_first(launcher: Tracked) -> None:
    for hours, label in ((3, "wf-oldest"), (2, "wf-middle"), (1, "wf-newest")):
        finished_server(launcher, label, output_bytes=40_000)
        age(launcher, label, hours)
    running = launcher.start(
        spec("wf-busy", python_command(f"print('y' * {200_000}); import time; time.sleep(60)"))
    )
    wait_for(lambda: launcher.log_tail(running, 1) != [], what="the running one's output")

    # Three folders of about 40 kB: only two fit in 100 kB. The running one does not count.
    bound = OutputRetention(keep_hours=168, max_total_mb=100_000 / MB)
    assert launcher.sweep(bound) == ["wf-oldest"]
    assert launcher.sweep(bound) == []
    assert sorted(launcher.labels()) == ["wf-busy", "wf-middle", "wf-newest"]

    assert launcher.sweep(bound.model_copy(update={"max_total_mb": 50_000 / MB})) == ["wf-middle"]
    assert launcher.inspect(running).running
    # 0: no size bound.
    assert launcher.sweep(OutputRetention(keep_hours=168, max_total_mb=0)) == []


def test_run_folder_is_kept_until_its_outcome_is_recorded(
    launcher: Tracked, tmp_path: Path
) -> None:
    python = tmp_path / "fake-python"  # the run worker's command is {python} -m tether_sdk...
    python.write_text("#!/bin/sh\necho run worker done\n")
    python.chmod(0o755)
    location = CodeLocationSpec(module="unused", python_executable=str(python))
    handle = launcher.start(spec("run:1", location, kind="run-worker"))
    assert wait_exited(launcher, handle).exit_code == 0

    nothing_kept = OutputRetention(keep_hours=0, max_total_mb=1 / MB)
    # Its workflow has not recorded the outcome yet: it still needs the exit code and log.
    assert launcher.sweep(nothing_kept) == []
    assert launcher.log_tail(handle, 1) == ["run worker done"]

    launcher.finished(handle, succeeded=True)
    assert (folder(launcher, "run:1") / "finished").exists()
    assert launcher.sweep(OutputRetention(keep_hours=168, max_total_mb=1 / MB)) == ["run:1"]

    # Never recorded at all: removed once a day old, whatever keep_hours says.
    other = launcher.start(spec("run:2", location, kind="run-worker"))
    wait_exited(launcher, other)
    age(launcher, "run:2", 23)
    assert launcher.sweep(nothing_kept) == []
    age(launcher, "run:2", 25)
    assert launcher.sweep(nothing_kept) == ["run:2"]


def test_a_folder_locked_by_another_launcher_is_kept(launcher: Tracked, state_dir: Path) -> None:
    finished_server(launcher, "wf-locked")
    age(launcher, "wf-locked", 200)
    retention = OutputRetention(keep_hours=1)

    # Another launcher instance in this process (another thread's stop or start).
    other = ProcessLauncher(state_dir)
    with other._locked("wf-locked", create=False):
        assert launcher.sweep(retention) == []
    assert folder(launcher, "wf-locked").is_dir()

    # Another agent process sharing the state directory.
    holder = subprocess.Popen(
        [
            PY,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from activities.launchers.process import ProcessLauncher\n"
            "with ProcessLauncher(Path(sys.argv[1]))._locked('wf-locked', create=False):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(60)\n",
            str(state_dir),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        assert launcher.sweep(retention) == []
        assert folder(launcher, "wf-locked").is_dir()
    finally:
        holder.kill()
        holder.wait()
    assert launcher.sweep(retention) == ["wf-locked"]


def test_recordless_folders_go_once_expired(launcher: Tracked) -> None:
    stray = launcher.state_dir / "processes" / "left-by-a-crashed-start"
    stray.mkdir(parents=True)
    (stray / ".lock").touch()
    assert launcher.sweep(OutputRetention(keep_hours=0)) == []  # may be a start in progress
    for path in (stray / ".lock", stray):
        when = time.time() - 25 * 3600
        os.utime(path, (when, when))
    assert launcher.sweep(OutputRetention(keep_hours=0)) == ["left-by-a-crashed-start"]
    assert not stray.exists()


def test_output_log_is_capped_while_running(state_dir: Path, launchers: list[Tracked]) -> None:
    cap = 64 * 1024
    launcher = Tracked(state_dir, retention=OutputRetention(max_log_mb=cap / MB))
    launchers.append(launcher)
    code = (
        "import time\n"
        "for i in range(20000):\n"
        "    print(f'line {i:05d} ' + 'z' * 20)\n"
        "print('last line', flush=True)\n"
        "time.sleep(60)\n"
    )
    handle = launcher.start(spec("wf-chatty", python_command(code)))
    log = Path(handle.log_path or "")
    wait_for(
        lambda: "last line" in launcher.log_tail(handle, 1) and log.stat().st_size <= cap,
        what="output.log cut below its cap",
    )
    lines = log.read_text().splitlines()
    assert lines[0].startswith("--- tether: earlier output removed (output.log is capped at ")
    assert lines[-1] == "last line"
    numbers = [int(line.split()[1]) for line in lines[1:-1]]
    assert numbers == list(range(numbers[0], 20000)) and len(numbers) > 500
    # The process went on undisturbed, and keeps writing at the new end.
    assert launcher.inspect(handle).running
    assert launcher.log_tail(handle, 2) == [f"line 19999 {'z' * 20}", "last line"]


def test_uncapped_output_log(state_dir: Path, launchers: list[Tracked]) -> None:
    launcher = Tracked(state_dir, retention=OutputRetention(max_log_mb=0))
    launchers.append(launcher)
    handle = launcher.start(
        spec("wf-free", python_command("print('w' * 100_000, flush=True); print('end')"))
    )
    wait_exited(launcher, handle)
    time.sleep(1.2)  # a supervisor's size check would have run by now
    assert Path(handle.log_path or "").stat().st_size > 100_000


async def test_sweep_periodically_until_stopped(launcher: Tracked) -> None:
    finished_server(launcher, "wf-swept")
    stop = asyncio.Event()
    retention = OutputRetention(keep_hours=0, sweep_interval_seconds=0.05)
    task = asyncio.create_task(sweep_periodically(launcher, retention, stop))
    deadline = time.monotonic() + 10
    while folder(launcher, "wf-swept").exists():
        assert time.monotonic() < deadline, "the sweep never removed the folder"
        await asyncio.sleep(0.02)
    finished_server(launcher, "wf-swept-later")  # the next interval's sweep finds it
    while folder(launcher, "wf-swept-later").exists():
        assert time.monotonic() < deadline, "the second sweep never ran"
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)


def test_output_retention_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.settings import output_retention

    monkeypatch.setenv("TETHER_OUTPUT_RETENTION_KEEP_HOURS", "24")
    monkeypatch.setenv("TETHER_OUTPUT_RETENTION_MAX_TOTAL_MB", "512")
    retention = output_retention()
    assert retention.keep_hours == 24 and retention.max_total_mb == 512
    assert retention.max_log_mb == 100 and retention.sweep_interval_seconds == 600
