"""Launchers: how the agent starts, finds again, watches and stops code servers and run
workers (see base.py for the interface, README.md for the design)."""
