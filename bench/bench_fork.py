"""Warm-launch groundwork (issue 11): what a forked worker saves over a cold interpreter.

Cold: a new `python` that imports what a run worker imports (the SDK's run worker, pydantic,
httpx) and the quickstart code location, then exits. Warm: the fork server of
`tether_sdk/forkserver.py`, its parent having imported the same once, forks a supervisor and
a worker per request, as the process launcher would ask it to. Both are timed from the
request to the exit code being known, with the CPU time per worker: exact for cold (the
interpreters are this process's children), the whole machine's busy time for warm (an upper
bound on a shared machine: the load average is printed).

    .venv/bin/python bench/bench_fork.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine

IMPORTS = "import tether_sdk.run_worker.worker, tether_sdk.examples.quickstart"
SERVER = f"""
import sys
{IMPORTS}
from tether_sdk.forkserver import ForkServer
ForkServer(sys.argv[1], lambda request: 0).serve()
"""


def children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def cold(runs: int) -> tuple[list[float], float]:
    """CPU: the interpreters' own (exact, as this process's children)."""
    walls = []
    cpu0 = children_cpu()
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORTS], check=True)
        walls.append(time.perf_counter() - start)
    return walls, (children_cpu() - cpu0) / runs


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (from /proc/stat): the forked supervisors
    are reaped by the kernel, so no process's counters hold their CPU. An upper bound on a
    shared machine (see the load average)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(f) for i, f in enumerate(fields) if i not in (3, 4))  # all but idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def warm(runs: int, work: Path) -> tuple[list[float], float]:
    from tether_sdk.forkserver import SpawnRequest, spawn

    socket_path = str(work / "fork.sock")
    server = subprocess.Popen([sys.executable, "-c", SERVER, socket_path])
    try:
        while not os.path.exists(socket_path):
            time.sleep(0.01)
        walls = []
        cpu0 = machine_cpu()
        for i in range(runs):
            folder = work / f"r{i}"
            folder.mkdir()
            request = SpawnRequest(
                label=f"r{i}",
                env={},
                cwd=str(folder),
                output_path=str(folder / "output.log"),
                exit_file=str(folder / "exit_code"),
                child_pid_file=str(folder / "child_pid"),
            )
            start = time.perf_counter()
            spawn(socket_path, request)
            while not (folder / "exit_code").exists():
                time.sleep(0.0005)
            walls.append(time.perf_counter() - start)
        return walls, (machine_cpu() - cpu0) / runs
    finally:
        server.terminate()
        server.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")
    with tempfile.TemporaryDirectory(prefix="tether-bench-fork-") as tmp:
        cold_walls, cold_cpu = cold(args.runs)
        warm_walls, warm_cpu = warm(args.runs, Path(tmp))
    for name, walls, cpu in (("cold", cold_walls, cold_cpu), ("warm", warm_walls, warm_cpu)):
        print(
            f"{name}: p50 {statistics.median(walls) * 1000:.1f} ms, "
            f"max {max(walls) * 1000:.1f} ms wall; CPU {cpu * 1000:.1f} ms per worker "
            f"({args.runs} runs)"
        )
    ratio = statistics.median(cold_walls) / statistics.median(warm_walls)
    print(f"warm is {ratio:.0f}x faster to a finished trivial worker (p50 wall)")
    print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")


if __name__ == "__main__":
    main()
