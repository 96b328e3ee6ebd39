"""Argument handling of the SDK's entry points (the parts that exit before doing work)."""

import pytest

from tether_sdk.cli import code_server_main, run_worker_main


def test_exactly_one_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as both:
        code_server_main(["--module", "m", "--python-file", "f.py"])
    assert both.value.code == 2
    with pytest.raises(SystemExit):
        code_server_main([])
    assert "give --module or --python-file" in capsys.readouterr().err


def test_run_worker_requires_run_id_url_and_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("TETHER_RUN_ID", "TETHER_CONTROL_PLANE_URL", "TETHER_RUN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit):
        run_worker_main(["--module", "m"])
    assert "--run-id" in capsys.readouterr().err


def test_bad_env_value_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TETHER_CODE_SERVER_PORT", "not-a-port")
    with pytest.raises(SystemExit):
        code_server_main(["--module", "m"])
    assert "TETHER_CODE_SERVER_PORT='not-a-port'" in capsys.readouterr().err
