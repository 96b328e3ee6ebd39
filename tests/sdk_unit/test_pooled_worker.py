"""``tether run-worker --wait-for-run``, the Docker launcher's pooled worker, as a real process:
it loads the code, waits on stdin, and runs the run it is given there exactly as a worker
started for it would; it leaves quietly when stdin closes, and at once when the code does not
load."""

import os
import subprocess
import sys

from tether_api.agent_api import PoolAssignment
from tether_api.user_api import Run

from .standin_control_plane import StandInControlPlane

WORKER = [sys.executable, "-m", "tether_cli.main", "run-worker", "--wait-for-run"]


def pooled(*args: str) -> subprocess.Popen[bytes]:
    # No TETHER_RUN_* in its environment: they come with the assignment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    return subprocess.Popen(
        [*WORKER, *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_pooled_worker_runs_the_run_written_to_its_stdin() -> None:
    with StandInControlPlane(run_id="run-pooled", job="etl") as cp:
        cp.run["run_config"] = {"source": "s3://b/o.csv", "rows": 3}
        worker = pooled("--module", "tether_sdk.examples.quickstart")
        assignment = PoolAssignment(
            env={
                "TETHER_RUN_ID": cp.run_id,
                "TETHER_CONTROL_PLANE_URL": cp.url,
                "TETHER_RUN_TOKEN": cp.token,
                "TETHER_LAUNCH": "pool",
            },
            run=Run.model_validate(cp.run),
        )
        out, _ = worker.communicate(assignment.model_dump_json().encode() + b"\n", timeout=60)
        assert worker.returncode == 0, out.decode()
        seen = [e for _, e in sorted(cp.events.items())]
    assert "waiting for a run" in out.decode()
    assert seen[0]["type"] == "RUN_START" and seen[0]["data"]["launch"] == "pool"
    assert seen[-1]["type"] == "RUN_SUCCESS"
    assert {("STEP_SUCCESS", "extract"), ("STEP_SUCCESS", "load")} <= {
        (e["type"], e.get("step")) for e in seen
    }


def test_a_pooled_worker_released_without_a_run_exits_quietly() -> None:
    worker = pooled("--module", "tether_sdk.examples.quickstart")
    out, _ = worker.communicate(b"", timeout=60)
    assert worker.returncode == 0 and "released without a run" in out.decode()


def test_a_pooled_worker_whose_code_does_not_load_exits_at_once() -> None:
    worker = pooled("--module", "tether_sdk.examples.broken")
    out, _ = worker.communicate(timeout=60)  # never given a run: it does not wait
    assert worker.returncode == 1
    assert "cannot load the definitions" in out.decode()
