"""The state directory every Tether component defaults to: ``$TETHER_HOME``, else
``~/.tether``. Stdlib only, so the lightest command can import it."""

import os
from pathlib import Path


def tether_home() -> Path:
    return Path(os.environ.get("TETHER_HOME") or Path.home() / ".tether").expanduser()
