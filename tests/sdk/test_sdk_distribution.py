"""The tether-sdk distribution (sdk/pyproject.toml, built by scripts/build-sdk-wheel.sh):
what a code location's image installs. It holds the SDK and the wire models only, so a
user's own top-level packages named like the agent's (``workflows``, ``activities``,
``worker``: the names a Temporal user's code takes) install beside it and are the ones
imported; its ``tether`` command serves the location and runs a run's worker.

A fresh virtual environment, with the wheel and a user project installed by pip (the
dependencies from this machine's package index), runs a real code server and a real run
worker against the session's control plane."""

import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sdk.test_run_worker import events, finish
from tests.support import REPO, Tenant, code_server

# A user project whose packages are called what the agent's are: a Temporal user's layout.
USER_PROJECT = {
    "pyproject.toml": """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-pipelines"
version = "1.0"

[tool.setuptools]
packages = ["workflows", "activities", "worker"]
""",
    "activities/__init__.py": """
def extract(n: int) -> list[int]:
    return list(range(n))
""",
    "worker/__init__.py": "WHOSE = 'acme'\n",
    "workflows/__init__.py": "",
    "workflows/tether_defs.py": """
import activities
import worker
from tether_sdk import Definitions, job, step


@step
def extract(ctx) -> list[int]:
    ctx.log.info(f"extracting for {worker.WHOSE} with {activities.__file__}")
    return activities.extract(4)


@step
def total(extract: list[int]) -> int:
    return sum(extract)


defs = Definitions(jobs=[job("etl", steps=[extract, total])])
""",
}


@pytest.fixture(scope="module")
def sdk_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdk-wheel")
    built = subprocess.run(
        [str(REPO / "scripts" / "build-sdk-wheel.sh"), str(out)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return Path(built.stdout.strip())


@pytest.fixture(scope="module")
def user_venv(sdk_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtual environment with only tether-sdk and the user's project installed."""
    root = tmp_path_factory.mktemp("user-image")
    project = root / "acme"
    for name, text in USER_PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(sdk_wheel), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield venv


def test_the_sdk_wheel_holds_the_sdk_and_the_wire_models_only(sdk_wheel: Path) -> None:
    with zipfile.ZipFile(sdk_wheel) as wheel:
        tops = {name.split("/")[0] for name in wheel.namelist()}
        entry_points = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    assert tops == {"tether_api", "tether_sdk", "tether_sdk-0.1.0.dist-info"}
    assert "tether = tether_sdk.cli:main" in scripts


def test_its_version_and_dependencies_follow_the_root_project() -> None:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    sdk = tomllib.loads((REPO / "sdk" / "pyproject.toml").read_text())["project"]
    assert sdk["version"] == root["version"]
    assert sdk["dependencies"] == root["dependencies"]
    assert sdk["requires-python"] == root["requires-python"]


def test_user_packages_named_like_the_agents_are_served_and_run(
    user_venv: Path, tenant: Tenant, tmp_path: Path
) -> None:
    python, tether = user_venv / "bin" / "python", user_venv / "bin" / "tether"
    # Out of the repository, whose own `workflows` and `activities` would come first.
    image_dir = tmp_path / "app"
    image_dir.mkdir()
    # The user's packages are the ones installed; the agent's are nowhere.
    where = subprocess.run(
        [str(python), "-c", "import workflows, activities, worker; print(worker.WHOSE)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=image_dir,
    )
    assert where.stdout.strip() == "acme"
    agent_free = subprocess.run(
        [str(python), "-c", "import tether_cli"], capture_output=True, text=True, cwd=image_dir
    )
    assert "No module named 'tether_cli'" in agent_free.stderr

    # Its code server reports the definitions of a module inside the user's `workflows`.
    with code_server(
        [str(tether), "code-server", "--module", "workflows.tether_defs"], tmp_path, image_dir
    ) as url:
        snapshot = httpx.get(f"{url}/snapshot", timeout=10).json()
    [etl] = snapshot["snapshot"]["jobs"]
    assert (etl["name"], [s["name"] for s in etl["steps"]]) == ("etl", ["extract", "total"])

    # Its run worker runs a run of it to SUCCESS against the control plane.
    tenant.deploy("acme", module="workflows.tether_defs")
    run = tenant.launch("acme", "etl")["id"]
    worker = subprocess.Popen(
        [str(tether), "run-worker", "--module", "workflows.tether_defs"],
        env={
            "PATH": os.environ["PATH"],
            "TETHER_RUN_ID": run,
            "TETHER_CONTROL_PLANE_URL": tenant.cp.url,
            "TETHER_RUN_TOKEN": tenant.run_token(run),
        },
        cwd=image_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    code, out = finish(worker)
    assert code == 0, out
    assert tenant.run(run)["status"] == "SUCCESS"
    logs = [e["message"] for e in events(tenant, run) if e["type"] == "LOG"]
    assert any(m.startswith("extracting for acme with ") and str(user_venv) in m for m in logs), (
        logs
    )


def test_its_tether_command_says_what_it_lacks(user_venv: Path) -> None:
    answer = subprocess.run(
        [str(user_venv / "bin" / "tether"), "runs", "list"],
        capture_output=True,
        text=True,
        cwd=user_venv,
    )
    assert answer.returncode == 2
    assert "tether code-server" in answer.stderr and "tether[cli]" in answer.stderr
