"""Launchers by name (activities/launchers/registry.py) and what each declares it can do: the
agent decides on capabilities, never on a launcher's name or class, and an agent with the
process launcher never imports the Docker SDK."""

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.launchers import registry
from activities.launchers.base import Handle, Inspection, Launcher, LaunchSpec
from activities.launchers.process import ProcessLauncher
from worker.config import AgentConfig, AgentConfigError, describe_errors
from worker.main import make_launcher, reap_orphans

REPO = Path(__file__).resolve().parents[2]
CONFIG = {"control_plane_url": "http://127.0.0.1:3000", "token": "tether_agent_x"}


def config(tmp_path: Path, **fields: Any) -> AgentConfig:
    return AgentConfig.model_validate({**CONFIG, "state_dir": tmp_path, **fields})


def test_a_process_agent_never_imports_the_docker_sdk(tmp_path: Path) -> None:
    """What `tether agent run` imports, and its launcher built through the registry."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        import tether_cli.agent
        import worker.main
        from worker.config import AgentConfig

        config = AgentConfig(
            control_plane_url="http://127.0.0.1:3000", token="t", state_dir=Path(sys.argv[1])
        )
        launcher = worker.main.make_launcher(config)
        assert launcher.name == "process", launcher
        backend = ("activities.launchers.docker", "activities.orphans")
        loaded = [m for m in sys.modules if m.split(".")[0] == "docker" or m in backend]
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_every_registered_launcher_is_a_launcher_of_its_name() -> None:
    assert registry.launcher_names() == ["process", "docker"]
    for name in registry.launcher_names():
        cls = registry.launcher_class(name)
        assert issubclass(cls, Launcher) and cls.name == name


def test_the_registry_builds_the_process_launcher_from_the_configuration(tmp_path: Path) -> None:
    launcher = make_launcher(config(tmp_path, output_retention={"keep_hours": 3}))
    assert isinstance(launcher, ProcessLauncher)
    assert launcher.state_dir == tmp_path.resolve()
    assert launcher.retention.keep_hours == 3


def test_an_unknown_launcher_is_a_configuration_error_naming_the_known_ones(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationError) as caught:
        config(tmp_path, launcher="kubernetes")
    [line] = describe_errors(caught.value)
    assert line == (
        "TETHER_LAUNCHER (--launcher): not a launcher this agent has; use 'process' or 'docker'"
    )
    # Past validation (model_construct), the agent still refuses it as configuration.
    unchecked = config(tmp_path).model_copy(update={"launcher": "kubernetes"})
    with pytest.raises(AgentConfigError, match=r"TETHER_LAUNCHER .*'process' or 'docker'"):
        make_launcher(unchecked)


def test_the_configuration_schema_lists_the_launchers() -> None:
    schema = AgentConfig.model_json_schema()["properties"]["launcher"]
    assert schema["enum"] == ["process", "docker"]
    assert "'process' (local processes)" in schema["description"]
    assert "'docker' (containers" in schema["description"]


class Bare(Launcher):
    """A backend that declares nothing beyond the interface."""

    name = "bare"

    def start(self, spec: LaunchSpec) -> Handle:
        raise NotImplementedError

    def find(self, label: str, *, include_exited: bool = False) -> Handle | None:
        return None

    def inspect(self, handle: Handle) -> Inspection:
        return Inspection(running=False, found=False)

    def stop(self, handle: Handle, grace_seconds: float) -> Inspection:
        return self.inspect(handle)

    def log_tail(self, handle: Handle, lines: int) -> list[str]:
        return []

    def cleanup(self, handle: Handle) -> None:
        pass


def capabilities(launcher: Launcher) -> dict[str, bool]:
    return {
        "warm_fork": launcher.supports_warm_fork,
        "warm_pool": launcher.supports_warm_pool,
        "orphan_reaping": launcher.supports_orphan_reaping,
        "kept_output": launcher.supports_kept_output,
    }


def test_capabilities_default_to_none(tmp_path: Path) -> None:
    bare = Bare()
    assert not any(capabilities(bare).values())
    assert bare.sweep() == []
    with pytest.raises(NotImplementedError):
        Bare.from_config(config(tmp_path))


def test_what_each_launcher_declares(tmp_path: Path) -> None:
    process = ProcessLauncher(tmp_path)
    assert capabilities(process) == {
        "warm_fork": True,
        "warm_pool": False,
        "orphan_reaping": True,
        "kept_output": True,
    }
    # Without an engine: the capabilities are constants of the class.
    docker_launcher = registry.launcher_class("docker")
    assert capabilities(object.__new__(docker_launcher)) == {
        "warm_fork": False,
        "warm_pool": True,
        "orphan_reaping": True,
        "kept_output": False,
    }


class Reaping(Bare):
    orphan_kind = "stray things"

    def __init__(self, supported: bool, removed: list[str] | Exception) -> None:
        self.supported = supported
        self.removed = removed
        self.calls: list[tuple[Any, ...]] = []

    @property
    def supports_orphan_reaping(self) -> bool:
        return self.supported

    async def reap_orphans(
        self, temporal: Any, organization: str, deployment: str, host_queue: str
    ) -> list[str]:
        self.calls.append((temporal, organization, deployment, host_queue))
        if isinstance(self.removed, Exception):
            raise self.removed
        return self.removed


async def test_the_agent_reaps_through_the_launcher_when_it_can(
    caplog: pytest.LogCaptureFixture,
) -> None:
    temporal: Any = object()
    caplog.set_level(logging.INFO, logger="tether.agent")
    unable = Reaping(False, ["never"])
    await reap_orphans(unable, temporal, "org", "dep", "q:host:a")
    assert unable.calls == []

    able = Reaping(True, ["one", "two"])
    await reap_orphans(able, temporal, "org", "dep", "q:host:a")
    assert able.calls == [(temporal, "org", "dep", "q:host:a")]
    assert "removed 2 stray things: one, two" in caplog.text

    failing = Reaping(True, RuntimeError("engine gone"))
    await reap_orphans(failing, temporal, "org", "dep", "q:host:a")  # logged, not raised
    assert "could not look for stray things" in caplog.text
