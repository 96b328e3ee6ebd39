"""Example code locations bundled with the SDK (used by the tests and the quickstart)."""
