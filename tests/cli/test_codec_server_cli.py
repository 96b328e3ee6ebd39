"""``tether codec-server`` as a real subprocess: its startup line, calls on its port, a clean
stop on SIGTERM and Ctrl-C (SIGINT), and exit 2 for every configuration error."""

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from worker.codec import new_key

TOKEN = "codec-t0ken-not-for-logs"
KEY = new_key()
STARTED = re.compile(
    r"^tether codec server on (http://127\.0\.0\.1:(\d+)) \(keys (.*); CORS for (.*)\)$"
)


def env(**settings: str) -> dict[str, str]:
    # Nothing from the outer environment (a developer's keys) may leak in.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "TEMPORAL_"))}
    return {**base, "COLUMNS": "300", "NO_COLOR": "1", **settings}


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "tether_cli.main", "codec-server", *args]


def said(result: subprocess.CompletedProcess[str]) -> str:
    """stderr on one line, without Typer's box."""
    return " ".join(result.stderr.replace("│", " ").split())


@pytest.fixture
def started() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """A codec server on a free port: the process, its URL and its startup line."""
    proc = subprocess.Popen(
        argv("--port", "0", "--origin", "http://127.0.0.1:8233,http://localhost:8233"),
        env=env(TETHER_CODEC_SERVER_TOKEN=TOKEN, TETHER_TEMPORAL_ENCRYPTION_KEYS=f"k1:{KEY}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline().strip()
        found = STARTED.match(line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        yield proc, found.group(1), line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_it_serves_then_stops_cleanly_on_a_signal(
    started: tuple[subprocess.Popen[str], str, str], sig: signal.Signals
) -> None:
    proc, url, line = started
    assert line.endswith("(keys k1; CORS for http://127.0.0.1:8233, http://localhost:8233)")
    assert httpx.post(f"{url}/decode", content=b"{}").status_code == 401
    ok = httpx.post(f"{url}/{TOKEN}/decode", content=b'{"payloads": []}')
    assert ok.status_code == 200 and ok.json() == {}
    # An idle keep-alive connection must not hold the stop up.
    with httpx.Client() as keep_alive:
        assert keep_alive.post(f"{url}/decode", content=b"{}").status_code == 401
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out.strip() == "tether codec server stopped"
    assert "refused /decode from 127.0.0.1: no valid token" in err
    assert TOKEN not in out + err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "settings", "named"),
    [
        ((), {"TETHER_TEMPORAL_ENCRYPTION_KEYS": f"k1:{KEY}"}, "TETHER_CODEC_SERVER_TOKEN"),
        (
            ("--token", " "),
            {"TETHER_TEMPORAL_ENCRYPTION_KEYS": f"k1:{KEY}"},
            "'--token' / TETHER_CODEC_SERVER_TOKEN: empty",
        ),
        (("--token", TOKEN), {}, "no key: set TETHER_TEMPORAL_ENCRYPTION_KEYS"),
        (
            ("--token", TOKEN, "--keys", "k1:short"),
            {},
            "TETHER_TEMPORAL_ENCRYPTION_KEYS: key 'k1' is",
        ),
        (
            ("--token", TOKEN, "--key-file", "/nonexistent/codec.keys"),
            {},
            "TETHER_TEMPORAL_ENCRYPTION_KEY_FILE: cannot read /nonexistent/codec.keys",
        ),
        (
            ("--token", TOKEN),
            {
                "TETHER_TEMPORAL_ENCRYPTION_KEYS": f"k1:{KEY}",
                "TETHER_CODEC_SERVER_ORIGINS": "http://127.0.0.1:8233/",
            },
            "TETHER_CODEC_SERVER_ORIGINS: 'http://127.0.0.1:8233/' is not an origin",
        ),
        (
            ("--token", TOKEN, "--port", "70000"),
            {"TETHER_TEMPORAL_ENCRYPTION_KEYS": f"k1:{KEY}"},
            "TETHER_CODEC_SERVER_PORT",
        ),
    ],
    ids=["no-token", "empty-token", "no-key", "bad-key", "no-key-file", "origin", "port"],
)
def test_a_configuration_error_exits_2_naming_it(
    args: tuple[str, ...], settings: dict[str, str], named: str
) -> None:
    result = subprocess.run(
        argv(*args), env=env(**settings), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stderr
    assert named in said(result), said(result)
    assert KEY not in result.stderr


def test_a_busy_port_exits_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            argv("--token", TOKEN, "--port", str(port)),
            env=env(TETHER_TEMPORAL_ENCRYPTION_KEYS=f"k1:{KEY}"),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in said(result)
