"""``tether dev``'s state file, $TETHER_HOME/dev.json: the format the user commands and the
next start read, written owner-only; an unreadable one is ignored with a warning."""

import json
import stat
from pathlib import Path

import pytest

from tests.support import dev_options
from tether_cli.context import DevFile, parse_dev_file
from tether_cli.dev.state import Tokens, dev_file_for, load_dev_file, save_dev_file


@pytest.mark.parametrize("headless", [False, True])
def test_saved_format(tmp_path: Path, headless: bool) -> None:
    o = dev_options(tmp_path, headless)
    tokens = Tokens(
        user="tether_user_u", agent="tether_agent_a", reused=False, nexus="tether_nexus_n"
    )
    save_dev_file(o.dev_file, dev_file_for(o, tokens))

    assert stat.S_IMODE(o.dev_file.stat().st_mode) == 0o600
    # Every key, in this order, a missing UI as null: what `tether dev` has always written.
    assert list(json.loads(o.dev_file.read_text()).items()) == [
        ("url", "http://127.0.0.1:3000"),
        ("organization", "local"),
        ("deployment", "dev"),
        ("user_token", "tether_user_u"),
        ("agent_token", "tether_agent_a"),
        ("temporal_address", "127.0.0.1:7233"),
        ("temporal_ui", None if headless else "http://127.0.0.1:8233"),
        ("nexus_token", "tether_nexus_n"),
    ]
    assert load_dev_file(o.dev_file) == parse_dev_file(o.dev_file) == dev_file_for(o, tokens)
    assert not list(tmp_path.glob(".dev.json.*"))  # no temporary file left


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"user_token": "t", "added_later": 1}))
    assert load_dev_file(path) == DevFile(user_token="t")


@pytest.mark.parametrize("text", ["{oops", "[]", '{"user_token": 5}'])
def test_unreadable_is_ignored_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "dev.json"
    path.write_text(text)
    assert load_dev_file(path) == DevFile()
    assert "minting new tokens" in capsys.readouterr().err
    assert load_dev_file(tmp_path / "missing.json") == DevFile()
    assert capsys.readouterr().err == ""
