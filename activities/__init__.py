"""Temporal activities of the agent: the blocking side effects its workflows ask for."""
