"""Recorded histories (``tests/histories/*.json``) must replay on today's workflow code.

A workflow change that issues different commands for an existing history would break every
execution in flight when an agent is upgraded (a non-determinism error). Such a change must
be guarded with ``workflow.patched()``; re-recording the histories hides the break instead of
fixing it. See tests/histories/README.md.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import temporalio.workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.codec import data_converter, new_key, parse_keys
from workflows import names
from workflows.agent import AgentWorkflow
from workflows.code_location import CodeLocationWorkflow
from workflows.nexus_run import NexusRunWorkflow
from workflows.run import RunWorkflow
from workflows.tick import TickWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
WORKFLOWS = [AgentWorkflow, CodeLocationWorkflow, RunWorkflow, TickWorkflow, NexusRunWorkflow]


def started(history: dict[str, Any]) -> dict[str, Any]:
    first = history["events"][0]
    attributes: dict[str, Any] = first["workflowExecutionStartedEventAttributes"]
    return attributes


def load(path: Path) -> WorkflowHistory:
    text = path.read_text()
    # The recorder keeps the real workflow ID in the start event; the file name will do
    # for histories exported without it (the ID only labels the replay).
    workflow_id = started(json.loads(text)).get("workflowId") or path.stem
    return WorkflowHistory.from_json(workflow_id, text)


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {started(json.loads(p.read_text()))["workflowType"]["name"] for p in FILES}
    expected = {workflow_type(w) for w in WORKFLOWS}
    assert expected <= recorded, f"no recorded history of {sorted(expected - recorded)}"


def test_workflow_types_are_the_names_in_histories_and_users_commands() -> None:
    """The types come from names.py, and are the names every history records and people
    type (``WorkflowType = 'RunWorkflow'``): renaming one strands the workflows in flight."""
    types = [workflow_type(w) for w in WORKFLOWS]
    assert types == [
        names.AGENT_WORKFLOW,
        names.CODE_LOCATION_WORKFLOW,
        names.RUN_WORKFLOW,
        names.TICK_WORKFLOW,
        names.NEXUS_RUN_WORKFLOW,
    ]
    assert types == [
        "AgentWorkflow",
        "CodeLocationWorkflow",
        "RunWorkflow",
        "TickWorkflow",
        "NexusRunWorkflow",
    ]
    assert names.SIGNAL_STOP == "stop"  # `temporal workflow signal --name stop`


def workflow_type(cls: type) -> str:
    definition = temporalio.workflow._Definition.must_from_class(cls)
    assert definition.name is not None
    return definition.name


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays_without_non_determinism(path: Path) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_from_before_encryption_replays_with_the_codec_on(path: Path) -> None:
    # An agent upgraded to encrypted payloads replays its unencrypted histories: payloads
    # without the encrypted encoding pass through the codec unchanged.
    keys = parse_keys(f"k2:{new_key()},k1:{new_key()}", "test")
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(keys))
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=True)
    assert result.replay_failure is None
