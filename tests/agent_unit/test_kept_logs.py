"""The agent's kept copies of 'local' runs' output: removed at the output retention's age."""

import os
import time
from pathlib import Path

from activities.kept_logs import kept_path, store_path, sweep_kept_logs


def test_kept_outputs_older_than_the_retention_are_removed(tmp_path: Path) -> None:
    old, new = kept_path(tmp_path, "run-old"), kept_path(tmp_path, "run-new")
    for path in (old, new):
        path.write_text("output\n")
    now = time.time()
    os.utime(old, (now - 3 * 3600, now - 3 * 3600))
    other = tmp_path / "notes.txt"  # not a kept output: left alone
    other.write_text("x")
    os.utime(other, (now - 9 * 3600, now - 9 * 3600))
    assert sweep_kept_logs(tmp_path, keep_hours=2, now=now) == [old]
    assert not old.exists() and new.exists() and other.exists()
    assert sweep_kept_logs(tmp_path / "missing", keep_hours=2) == []


def test_a_store_url_names_one_file_per_run(tmp_path: Path) -> None:
    url = (tmp_path / "logs dir").as_uri()
    assert store_path(url, "prod", "r1") == tmp_path / "logs dir" / "prod" / "r1.log"
