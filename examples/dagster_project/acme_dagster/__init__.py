"""acme_dagster: an example Dagster project (see ../README.md)."""
