"""The ``tether`` command (Typer + Rich)."""
