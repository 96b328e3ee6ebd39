"""The web UI's vendored front-end files are exactly what scripts/vendor-ui-assets.py fetched
from the npm registry (nobody edits them by hand), and the pages load nothing from elsewhere."""

import hashlib
import json
import re
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "tether_controlplane" / "ui"


def test_vendored_files_match_their_lock() -> None:
    lock = json.loads((UI / "static" / "vendor" / "vendored.json").read_text())
    assert lock, "nothing vendored"
    for entry in lock:
        content = (UI / "static" / "vendor" / entry["file"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry["file"]


def test_templates_load_nothing_from_another_host() -> None:
    for template in (UI / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), template.name
