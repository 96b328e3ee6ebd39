"""Fixtures for the SDK tests: a real code server subprocess on a free local port."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


class CodeServerProcess:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=10)


def start_code_server(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> CodeServerProcess:
    port_file = tmp_path / f"port-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tether_sdk.code_server", *args, "--port-file", str(port_file)],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not port_file.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"code server exited with {process.returncode}:\n{err}")
        if time.monotonic() > deadline:
            stop(process)
            raise AssertionError("code server did not write its port file within 20s")
        time.sleep(0.02)
    return CodeServerProcess(process, int(port_file.read_text()))


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def code_server(tmp_path: Path) -> Iterator[Callable[..., CodeServerProcess]]:
    """Start code servers with the given arguments; all are stopped (by PID) at the end."""
    started: list[CodeServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> CodeServerProcess:
        server = start_code_server(["--port", "0", *args], tmp_path, env)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.client.close()
            stop(server.process)
