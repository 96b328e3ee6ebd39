"""Domain logic on a SQLAlchemy session; no HTTP here beyond the error types."""
