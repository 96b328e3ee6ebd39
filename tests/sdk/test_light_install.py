"""A user image has only the light SDK (pydantic, httpx): its commands must not need more."""

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from tests.support import code_server

# What only the extras bring: the control plane's stack, the CLI's, and the agent's.
CONTROL_PLANE = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic"}
CONTROL_PLANE |= {"pydantic_settings", "psycopg", "tether_controlplane"}
HEAVY = CONTROL_PLANE | {"typer", "rich", "temporalio"}

# Run `tether ...` with the BLOCKED modules made unimportable, as in a slim user image.
LIGHT_TETHER = textwrap.dedent(
    """
    import importlib.abc, sys

    HEAVY = BLOCKED

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Block())
    from tether_cli.main import main
    sys.argv = ["tether", *sys.argv[1:]]
    main()
    """
)


def _light(tmp_path: Path, blocked: set[str] = HEAVY) -> list[str]:
    script = tmp_path / "light_tether.py"
    script.write_text(LIGHT_TETHER.replace("BLOCKED", repr(sorted(blocked))))
    return [sys.executable, str(script)]


def test_code_server_runs_with_only_the_light_sdk(tmp_path: Path) -> None:
    command = [*_light(tmp_path), "code-server", "--module", "tether_sdk.examples.quickstart"]
    with code_server(command, tmp_path) as url:
        assert httpx.get(f"{url}/health").json()["loaded"] is True


def test_run_worker_help_and_admin_commands_explain_the_missing_extra(tmp_path: Path) -> None:
    help_ = subprocess.run(
        [*_light(tmp_path), "run-worker", "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_.returncode == 0 and "--run-id" in help_.stdout
    admin = subprocess.run(
        [*_light(tmp_path), "controlplane", "serve"], capture_output=True, text=True, timeout=60
    )
    assert admin.returncode == 2
    assert "pip install 'tether[cli]'" in admin.stderr


def test_cli_commands_work_without_the_control_plane_extra(tmp_path: Path) -> None:
    """`tether[cli]` or `tether[agent]` alone: the CLI loads, and only the control plane's own
    commands need the `controlplane` extra."""
    result = subprocess.run(
        [*_light(tmp_path, CONTROL_PLANE), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "deploy" in result.stdout and "agent" in result.stdout
