"""Tether's Temporal workflows: deterministic state machines, no I/O.

``AgentWorkflow`` (one per agent and deployment) polls and dispatches, ``CodeLocationWorkflow``
(one per code location) keeps a code server running, ``RunWorkflow`` (one per run) launches
and watches a run worker. Everything they touch goes through activities (``activities/``).
This package must import nothing with side effects: the workflow sandbox re-imports it.
"""
