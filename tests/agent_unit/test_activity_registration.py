"""The activities the agent registers (worker/activity_set.py, found by their @activity.defn)
are exactly those its workflows call: one missing would leave a workflow's task unserved, one
extra is dead code. Old histories' activities stay as long as a workflow still calls them."""

import ast
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio import activity

from activities.context import AgentContext
from activities.nexus_runs import NexusRunActivities
from activities.runs_api import RunsApiClient
from worker.activity_set import AgentActivitySet, defined_activities
from workflows import names

WORKFLOWS = Path(names.__file__).parent
# workflow.<one of these>(names.X, ...): the first argument names the activity.
ACTIVITY_CALLS = {
    "execute_activity",
    "start_activity",
    "execute_local_activity",
    "start_local_activity",
}


def activity_constants() -> set[str]:
    """The constants of workflows/names.py's activities section."""
    source = (WORKFLOWS / "names.py").read_text()
    lines = source.splitlines()
    begin = next(i for i, line in enumerate(lines, 1) if line.startswith("# --- activities"))
    end = next(i for i, line in enumerate(lines, 1) if i > begin and line.startswith("# --- "))
    return {
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and begin < node.lineno < end
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def called_by_workflows() -> set[str]:
    """Every activity name the workflow modules use: the activity constants they refer to
    (a call may pass one through a helper's parameter)."""
    constants = activity_constants()
    used = set()
    for path in sorted(WORKFLOWS.glob("*.py")):
        if path.name == "names.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "names"
                and node.attr in constants
            ):
                used.add(getattr(names, node.attr))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ACTIVITY_CALLS
                and node.args
                and isinstance(node.args[0], ast.Attribute)
            ):
                # A constant named at the call: it must be in the activities section.
                assert node.args[0].attr in constants, f"{path.name}:{node.lineno}"
    return used


async def registered() -> list[str]:
    # The objects only keep the context: nothing is called here.
    activity_set = AgentActivitySet.build(cast(AgentContext, object()))
    # And the Nexus worker's (worker/nexus_worker.py), on the deployment's Nexus queue.
    nexus = defined_activities(NexusRunActivities(cast(RunsApiClient, object())))
    try:
        return [
            activity._Definition.must_from_callable(fn).name or ""
            for fn in [*activity_set.activities(), *nexus]
        ]
    finally:
        await activity_set.aclose()


async def test_the_agent_registers_every_activity_the_workflows_call_and_no_other() -> None:
    names_registered = await registered()
    assert len(names_registered) == len(set(names_registered))
    called = called_by_workflows()
    assert len(called) >= 20  # the scan found the calls
    assert set(names_registered) - called == set(), "registered, never called by a workflow"
    assert called - set(names_registered) == set(), "called by a workflow, not registered"


def test_defined_activities_are_bound_and_unique() -> None:
    class One:
        @activity.defn(name="same")
        async def first(self) -> None: ...

        async def helper(self) -> None: ...

    class Two:
        @activity.defn(name="same")
        async def second(self) -> None: ...

    one: Any = One()
    [found] = defined_activities(one)
    assert found == one.first and found.__self__ is one
    with pytest.raises(ValueError, match="two activities are named 'same'"):
        defined_activities(one, Two())
