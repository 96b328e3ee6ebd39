"""Launchers: how the agent starts, finds again, watches and stops code servers and run
workers (see base.py for the interface and its capabilities, registry.py for the backends by
name, README.md for the design)."""
