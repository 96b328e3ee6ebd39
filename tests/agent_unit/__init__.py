"""Unit tests of the agent's parts that need no Temporal server (launchers, ...)."""
