"""User code that misbehaves still ends its run with a final event and the right exit code."""

import random
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.sdk.test_run_worker import events, finish, start_worker, wait_for_step_start
from tests.support import Tenant, code_server

LOCATIONS = Path(__file__).parent / "locations"
ODD = LOCATIONS / "odd_steps.py"


def _run(tenant: Tenant, job: str, python_file: Path = ODD, **body: object) -> tuple[str, int, str]:
    tenant.deploy("odd", python_file=str(python_file))
    run = tenant.launch("odd", job=job, **body)["id"]
    code, out = finish(start_worker(tenant, run, python_file=python_file), timeout=90)
    return run, code, out


def test_metadata_that_cannot_be_shown_does_not_stop_delivery(tenant: Tenant) -> None:
    run, code, out = _run(tenant, "bad_metadata")
    assert code == 0, out
    done = next(e for e in events(tenant, run) if e["type"] == "STEP_SUCCESS")
    assert "unencodable_data" in done["data"]
    assert tenant.run(run)["status"] == "SUCCESS"


def test_a_validator_raising_keyerror_fails_the_run_with_a_final_event(tenant: Tenant) -> None:
    run, code, out = _run(tenant, "bad_validator", run_config={"region": "mars"})
    assert code == 1, out
    final = tenant.run(run)
    assert final["status"] == "FAILURE" and "KeyError" in final["status_message"]


def test_a_thread_printing_after_its_step_does_not_hold_the_run(tenant: Tenant) -> None:
    started = time.monotonic()
    run, code, out = _run(tenant, "stray_thread")
    assert code == 0, out[-2000:]
    assert time.monotonic() - started < 60
    evs = events(tenant, run)
    assert evs[-1]["type"] == "RUN_SUCCESS"  # nothing recorded after the run's end
    assert tenant.run(run)["status"] == "SUCCESS"


def test_keyboard_interrupt_from_a_step_fails_only_that_step(tenant: Tenant) -> None:
    run, code, out = _run(tenant, "keyboard_interrupt")
    assert code == 1, out
    evs = events(tenant, run)
    failed = [e for e in evs if e["type"] == "STEP_FAILURE"]
    assert [e["step"] for e in failed] == ["interrupts_itself"]
    assert "KeyboardInterrupt" in failed[0]["message"]
    assert any(e["type"] == "STEP_SUCCESS" and e["step"] == "independent" for e in evs)


def test_sigterm_during_a_slow_import_cancels_promptly(tenant: Tenant) -> None:
    slow = LOCATIONS / "slow_import.py"
    tenant.deploy("slow", python_file=str(slow))
    run = tenant.launch("slow", job="never")["id"]
    proc = start_worker(tenant, run, python_file=slow)
    time.sleep(2)  # well inside the 60 s import
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc, timeout=20)
    assert code == 143, out
    assert events(tenant, run)[-1]["type"] == "RUN_CANCELED"
    assert tenant.run(run)["status"] == "CANCELED"


@pytest.mark.timeout(300)
def test_repeated_cancels_of_a_chatty_step_never_hang(tenant: Tenant) -> None:
    """SIGTERM lands at random points of a step that prints and logs without pause: often
    inside the SDK's own capture and sink code. Every worker must end CANCELED."""
    tenant.deploy("odd", python_file=str(ODD))
    rng = random.Random(11)
    for _ in range(12):
        run = tenant.launch("odd", job="chatty_forever")["id"]
        proc = start_worker(tenant, run, python_file=ODD)
        wait_for_step_start(tenant, run, "chatty_forever")
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGTERM)
        code, out = finish(proc, timeout=60)
        assert code == 143, out[-2000:]
        assert tenant.run(run)["status"] == "CANCELED"


def test_code_server_serves_a_schema_failure_as_a_load_error(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tether_sdk.code_server",
        "--python-file",
        str(LOCATIONS / "schema_less.py"),
    ]
    with code_server(command, tmp_path) as url:
        snapshot = httpx.get(f"{url}/snapshot").json()
        assert snapshot["snapshot"] is None
        assert "could not describe the definitions" in snapshot["load_error"]["message"]
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n{}")
            assert raw.recv(200).startswith(b"HTTP/1.1 400")
