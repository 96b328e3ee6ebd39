"""Tether's custom search attributes (``workflows.search_attributes``): registered on the
dev servers Tether starts (``tether dev``, the tests'), found missing on a server without
them, and added there by the printed commands or by ``tether dev``."""

import asyncio
import shlex
import subprocess
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from tests.agent_support import TemporalDevServer
from tests.support import dev_options, free_port
from tether_cli.dev.options import Options
from tether_cli.dev.processes import Signals
from tether_cli.dev.stack import Stack
from tether_cli.dev.temporal import dev_server_command, register_search_attributes
from worker.search_attributes import (
    SearchAttributeCheckError,
    how_to_add,
    missing_search_attributes,
    start_dev_flags,
)
from worker.temporal_binary import temporal_cli
from workflows.search_attributes import ALL, KEYS

NAMES = ["TetherRunStatus", "TetherJob", "TetherCodeLocation", "TetherDeployment"]


def missing(address: str, namespace: str = "default") -> list[str]:
    async def check() -> list[str]:
        client = await Client.connect(address, namespace=namespace)
        return await missing_search_attributes(client, namespace)

    return asyncio.run(check())


def options(home: Path, temporal_address: str | None) -> Options:
    return dev_options(home, temporal_address=temporal_address)


def test_the_four_keyword_attributes() -> None:
    assert dict.fromkeys(NAMES, "Keyword") == ALL
    assert [key.name for key in KEYS] == NAMES
    assert start_dev_flags() == [
        *("--search-attribute", "TetherRunStatus=Keyword"),
        *("--search-attribute", "TetherJob=Keyword"),
        *("--search-attribute", "TetherCodeLocation=Keyword"),
        *("--search-attribute", "TetherDeployment=Keyword"),
    ]


def test_how_to_add_is_one_create_command_per_attribute() -> None:
    assert how_to_add([], "default", "127.0.0.1:7233") == ""
    assert how_to_add(NAMES[:2], "prod ns", "temporal.example:7233").splitlines() == [
        "temporal operator search-attribute create --address temporal.example:7233 "
        f"--namespace 'prod ns' --name {name} --type Keyword"
        for name in NAMES[:2]
    ]


@pytest.mark.parametrize("headless", [False, True])
def test_tether_dev_starts_its_dev_server_with_them(tmp_path: Path, headless: bool) -> None:
    o = options(tmp_path, None)
    o.headless = headless
    command = dev_server_command(o, "/bin/temporal")
    assert command[:3] == ["/bin/temporal", "server", "start-dev"]
    pairs = [command[i + 1] for i, word in enumerate(command) if word == "--search-attribute"]
    assert pairs == [f"{name}=Keyword" for name in NAMES]


def test_tether_dev_warns_with_the_commands_when_it_cannot_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    register_search_attributes(Stack(options(tmp_path, address), Signals()))
    text = capsys.readouterr().err
    assert f"could not check Tether's search attributes on {address}" in text, text
    assert how_to_add(NAMES, "default", address) in text, text


@pytest.mark.e2e
async def test_the_session_dev_server_has_them(temporal_server: TemporalDevServer) -> None:
    client = await Client.connect(temporal_server.address)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    for name in NAMES:
        assert listed.custom_attributes[name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert await missing_search_attributes(client, "default") == []


@pytest.mark.e2e
def test_a_server_without_them_then_added(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = TemporalDevServer(
        tmp_path, search_attributes=False, namespaces=("other", "wrong")
    ).start()
    try:
        assert missing(server.address) == NAMES
        assert missing(server.address, "other") == NAMES

        # The commands `tether agent run` shows, as a user would paste them.
        commands = how_to_add(NAMES, "default", server.address)
        assert len(commands.splitlines()) == len(NAMES)
        for line in commands.splitlines():
            words = shlex.split(line)
            assert words[0] == "temporal"
            created = subprocess.run(
                [temporal_cli(), *words[1:]], capture_output=True, text=True, timeout=60
            )
            assert created.returncode == 0, created.stdout + created.stderr
        assert missing(server.address) == []
        assert missing(server.address, "other") == NAMES  # per namespace

        # `tether dev` on this server (--temporal-address) adds them to the agent's
        # namespace itself; once there, it says nothing.
        monkeypatch.setenv("TEMPORAL_NAMESPACE", "other")
        stack = Stack(options(tmp_path, server.address), Signals())
        register_search_attributes(stack)
        text = capsys.readouterr().err
        assert f"registered search attributes {', '.join(NAMES)} (namespace other)" in text
        assert missing(server.address, "other") == []
        register_search_attributes(stack)
        assert capsys.readouterr().err == ""

        # What adding cannot fix, or a refused list, raises with what to do.
        assert (
            server.cli(
                *("operator", "search-attribute", "create", "--namespace", "wrong"),
                *("--name", "TetherJob", "--type", "Text"),
            ).returncode
            == 0
        )
        with pytest.raises(SearchAttributeCheckError, match=r"TetherJob .* is of type TEXT"):
            missing(server.address, "wrong")
        with pytest.raises(SearchAttributeCheckError, match=r"cannot list .* 'nowhere'"):
            missing(server.address, "nowhere")
    finally:
        server.stop()
