"""The web UI: server-rendered pages over the REST API."""
