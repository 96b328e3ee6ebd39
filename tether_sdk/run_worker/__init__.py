"""The run worker: executes one run of a job and streams its events to the control plane.

Started by the agent as ``tether run-worker`` (or ``python -m tether_sdk.run_worker``), one
process per run, from the code location's image.
"""
