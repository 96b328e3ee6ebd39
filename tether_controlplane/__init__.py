"""Tether's control plane: REST API, storage, request and run queues, monitoring."""
