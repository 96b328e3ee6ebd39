"""A pooled run worker: started by the Docker launcher before any run needs it, it imports
the SDK and the user's definitions, then waits for its run on stdin.

The launcher claims a waiting container for a run (renaming it to the run's container name),
then writes one JSON line to its stdin (``tether_api.agent_api.PoolAssignment``): the run's env,
its token among it, and the run. From there it is a run worker like any other: its own
container, process and control-plane client; SIGTERM and cancellation as usual. Nothing is
written to the container's configuration, so ``docker inspect`` never shows the token.
"""

import os
import random
import sys
from typing import BinaryIO

from tether_api.agent_api import PoolAssignment
from tether_api.codeserver import LoadError
from tether_sdk.forkserver import warm_and_freeze
from tether_sdk.location import LocationTarget, load_location
from tether_sdk.run_worker.client import preload
from tether_sdk.run_worker.worker import log, options_from_env, run_worker

# An assignment is the run's env and the run itself (its config is bounded by the API).
MAX_ASSIGNMENT_BYTES = 8 * 1024 * 1024
EXIT_UNUSABLE = 1


def wait_for_run(
    target: LocationTarget,
    heartbeat_interval: float,
    flush_timeout: float,
    stdin: BinaryIO | None = None,
) -> int:
    """Load the definitions, wait for the assignment, run it. Exits non-zero at once when the
    code does not load (the launcher then starts the run cold, which reports the error) and
    0 when stdin closes with no run (the pool was drained)."""
    loaded = load_location(target)
    if isinstance(loaded, LoadError):
        log(f"tether run-worker: pooled worker cannot load the definitions: {loaded.message}")
        return EXIT_UNUSABLE
    preload()
    # The definitions live as long as the process: frozen out of the collector's sight, so
    # the run's full collections do not walk them.
    warm_and_freeze(loaded.warm_up, lambda line: log(f"tether run-worker: pooled: {line}"))
    log("tether run-worker: pooled: definitions loaded; waiting for a run")
    line = (stdin or sys.stdin.buffer).readline(MAX_ASSIGNMENT_BYTES)
    if not line.strip():
        log("tether run-worker: pooled: released without a run")
        return 0
    assignment = PoolAssignment.model_validate_json(line)
    os.environ.update(assignment.env)
    random.seed()  # not a sequence the waiting process may have started
    return run_worker(
        options_from_env(assignment.env, loaded, assignment.run, heartbeat_interval, flush_timeout)
    )
