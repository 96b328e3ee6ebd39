"""A user image has only the light SDK (pydantic, httpx): its commands must not need more."""

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from tests.support import code_server

# Run `tether ...` with every heavy dependency made unimportable, as in a slim user image.
LIGHT_TETHER = textwrap.dedent(
    """
    import importlib.abc, sys

    HEAVY = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "typer", "rich",
             "pydantic_settings", "psycopg", "temporalio", "tether_controlplane"}

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


def _light(tmp_path: Path) -> list[str]:
    script = tmp_path / "light_tether.py"
    script.write_text(LIGHT_TETHER)
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
