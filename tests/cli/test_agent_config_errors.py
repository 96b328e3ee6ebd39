"""``tether agent run`` with each kind of wrong setting, as a real subprocess: exit 2 (invalid
configuration, per its --help) with a message naming the setting, before it connects to
anything. The control plane and Temporal addresses point at a socket that listens and counts
who connects: nobody may. Problems that are not configuration keep exit 1."""

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.codec import new_key

SECRET_TOKEN = "tether_agent_do-not-print-me"
KEY = new_key()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Where the control plane and Temporal are said to be: listening, never answering. A
    connection attempt is held in its backlog, so accept() tells whether there was one."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


def agent_run(
    listener: socket.socket, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    port = listener.getsockname()[1]
    # Nothing from the outer environment (a developer's settings) may leak in.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "TEMPORAL_"))}
    base.update(
        TETHER_HOME=str(tmp_path / "home"),
        TETHER_CONTROL_PLANE_URL=f"http://127.0.0.1:{port}",
        TETHER_AGENT_TOKEN=SECRET_TOKEN,
        TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
        COLUMNS="300",  # Typer's usage errors are boxed at the terminal's width
        NO_COLOR="1",
    )
    result = subprocess.run(
        [sys.executable, "-m", "tether_cli.main", "agent", "run", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing connected: configuration is checked first
    return result


def said(result: subprocess.CompletedProcess[str]) -> str:
    """stderr on one line, without Typer's box."""
    return " ".join(result.stderr.replace("│", " ").split())


def pem_less(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_text("not a certificate\n")
    return str(path)


def short_key() -> str:
    return base64.b64encode(b"x" * 16).decode()


# (setting named in the message, environment, a fragment of the fix or the reason)
CASES: list[tuple[str, dict[str, str], str]] = [
    ("TETHER_TEMPORAL_ENCRYPTION_KEYS", {"TETHER_TEMPORAL_ENCRYPTION_KEYS": "bad"}, "new_key"),
    (
        "TETHER_TEMPORAL_ENCRYPTION_KEYS",
        {"TETHER_TEMPORAL_ENCRYPTION_KEYS": f"k1:{short_key()}"},
        "AES-256 needs 32",
    ),
    (
        "TETHER_TEMPORAL_ENCRYPTION_KEY_FILE",
        {"TETHER_TEMPORAL_ENCRYPTION_KEY_FILE": "/nonexistent/agent.keys"},
        "cannot read /nonexistent/agent.keys",
    ),
    ("TETHER_RUN_START_TIMEOUT_SECONDS", {"TETHER_RUN_START_TIMEOUT_SECONDS": "ten"}, "number"),
    ("TETHER_RUN_STOP_GRACE_SECONDS", {"TETHER_RUN_STOP_GRACE_SECONDS": "-1"}, "0 or more"),
    (
        "TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS",
        {"TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS": "0"},
        "more than 0",
    ),
    ("TETHER_DOCKER_PULL", {"TETHER_DOCKER_PULL": "sometimes"}, "'missing', 'always' or"),
    (
        "TETHER_DOCKER_REGISTRY_PASSWORD",
        {"TETHER_DOCKER_REGISTRY_USERNAME": "ci"},
        "Field required",
    ),
    (
        "TETHER_OUTPUT_RETENTION_KEEP_HOURS",
        {"TETHER_OUTPUT_RETENTION_KEEP_HOURS": "-1"},
        "or equal to 0",
    ),
    ("TETHER_NEXUS_OUTCOME", {"TETHER_NEXUS_OUTCOME": "everything"}, "'full' or 'ids'"),
    ("TETHER_LAUNCHER (--launcher)", {"TETHER_LAUNCHER": "kubernetes"}, "'process' or 'docker'"),
    ("TETHER_SEARCH_ATTRIBUTES", {"TETHER_SEARCH_ATTRIBUTES": "maybe"}, "'check', 'add' or"),
    ("TEMPORAL_TLS_CA (--temporal-tls-ca)", {"TEMPORAL_TLS_CA": "/nonexistent/ca.pem"}, "PEM"),
    ("TEMPORAL_TLS_KEY", {"TEMPORAL_TLS_CERT": "/nonexistent/client.pem"}, "give both"),
    ("TETHER_CONTROL_PLANE_CA", {"TETHER_CONTROL_PLANE_CA": "/nonexistent/ca.pem"}, "cannot read"),
    ("TETHER_CONTROL_PLANE_URL", {"TETHER_CONTROL_PLANE_URL": "localhost:3000"}, "http(s) URL"),
    ("TEMPORAL_ADDRESS", {"TEMPORAL_ADDRESS": "http://127.0.0.1:7233"}, "not host:port"),
    ("TETHER_AGENT_NAME (--name)", {"TETHER_AGENT_NAME": "my agent"}, "1-63 letters"),
    ("TETHER_AGENT_QUEUES (--queue)", {"TETHER_AGENT_QUEUES": "etl,gpu/a100"}, "1-63 letters"),
    ("TETHER_DEPLOYMENT (--deployment)", {"TETHER_DEPLOYMENT": "prod:eu"}, "1-63 letters"),
    ("TETHER_AGENT_POLL_WAIT", {"TETHER_AGENT_POLL_WAIT": "60"}, "less than or equal to 30"),
    ("TETHER_AGENT_BLOCKING_THREADS", {"TETHER_AGENT_BLOCKING_THREADS": "2"}, "or equal to 4"),
    ("TETHER_LOG_LEVEL (--log-level)", {"TETHER_LOG_LEVEL": "loud"}, "debug, info"),
    # Values Typer itself cannot parse: its usage error, exit 2 too.
    ("TEMPORAL_TLS", {"TEMPORAL_TLS": "maybe"}, "not a valid boolean"),
]


@pytest.mark.parametrize(
    ("setting", "env", "fix"), CASES, ids=[f"{c[0].split()[0]}={i}" for i, c in enumerate(CASES)]
)
def test_a_wrong_setting_exits_2_naming_it(
    listener: socket.socket, tmp_path: Path, setting: str, env: dict[str, str], fix: str
) -> None:
    result = agent_run(listener, tmp_path, **env)
    assert result.returncode == 2, result.stderr
    message = said(result)
    assert setting in message and fix in message, message
    assert SECRET_TOKEN not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_key_file_that_cannot_be_used_exits_2(listener: socket.socket, tmp_path: Path) -> None:
    bad = tmp_path / "bad.keys"
    bad.write_text(f"k1 {KEY}\nk2 not*base64\n")
    empty = tmp_path / "empty.keys"
    empty.write_text("# rotated 2026-11-30, nothing left\n")
    for path, why in ((bad, "key 'k2' is not valid base64"), (empty, "holds no key")):
        result = agent_run(listener, tmp_path, TETHER_TEMPORAL_ENCRYPTION_KEY_FILE=str(path))
        assert result.returncode == 2, result.stderr
        message = said(result)
        assert f"TETHER_TEMPORAL_ENCRYPTION_KEY_FILE ({path})" in message and why in message
        assert KEY not in result.stderr


def test_a_malformed_key_is_not_echoed(listener: socket.socket, tmp_path: Path) -> None:
    """'id=key' instead of 'id:key': the message points at the entry, not at its text."""
    result = agent_run(listener, tmp_path, TETHER_TEMPORAL_ENCRYPTION_KEYS=f"k1={KEY}")
    assert result.returncode == 2
    assert "TETHER_TEMPORAL_ENCRYPTION_KEYS: key 1 is not 'id:base64key'" in said(result)
    assert KEY[:8] not in result.stderr


def test_files_that_are_not_pem_and_a_state_dir_that_is_a_file(
    listener: socket.socket, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("")
    result = agent_run(
        listener,
        tmp_path,
        TEMPORAL_TLS_CERT=pem_less(tmp_path, "client.pem"),
        TEMPORAL_TLS_KEY=pem_less(tmp_path, "client.key"),
        TETHER_AGENT_STATE_DIR=str(not_a_dir),
    )
    assert result.returncode == 2
    message = said(result)
    for setting in ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"):
        assert f"{setting} (--{setting.lower().replace('_', '-')}): " in message
    assert "is not a PEM file" in message
    assert f"TETHER_AGENT_STATE_DIR (--state-dir): {not_a_dir} is a file" in message


def test_every_wrong_value_is_named_at_once(listener: socket.socket, tmp_path: Path) -> None:
    result = agent_run(
        listener,
        tmp_path,
        "--token",
        " ",
        TETHER_RUN_START_TIMEOUT_SECONDS="soon",
        TETHER_LAUNCHER="k8s",
    )
    assert result.returncode == 2
    message = said(result)
    for setting in (
        "TETHER_AGENT_TOKEN (--token): empty",
        "TETHER_RUN_START_TIMEOUT_SECONDS",
        "TETHER_LAUNCHER",
    ):
        assert setting in message, message


def test_an_unreachable_control_plane_is_not_a_configuration_error(tmp_path: Path) -> None:
    """Good settings, nobody listening: exit 1 (could not start), as before."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    with socket.create_server(("127.0.0.1", 0)) as listening:  # only for agent_run's check
        listening.setblocking(False)
        result = agent_run(
            listening,
            tmp_path,
            TETHER_CONTROL_PLANE_URL=f"http://127.0.0.1:{port}",
            TETHER_TEMPORAL_ENCRYPTION_KEYS=f"k1:{KEY}",
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot reach the control plane at http://127.0.0.1:{port}" in said(result)
