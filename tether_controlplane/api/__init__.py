"""The FastAPI application: ``create_app`` builds it from settings."""
