"""The activities the agent registers on its Temporal workers: every method decorated with
``@activity.defn`` on its activity objects, found by scanning them, so that a new activity
needs no list to be updated (tests/agent_unit/test_activity_registration.py checks the
names against those the workflows call)."""

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from temporalio import activity

from activities.agent import AgentActivities
from activities.code_locations import CodeLocationActivities
from activities.context import AgentContext
from activities.runs import RunActivities
from activities.ticks import TickActivities


def defined_activities(*holders: object) -> list[Callable[..., Any]]:
    """The methods of ``holders`` decorated with ``@activity.defn``, bound to their object,
    in definition order. Two with one activity name is an error (a worker would refuse it)."""
    found: dict[str, Callable[..., Any]] = {}
    for holder in holders:
        seen: set[str] = set()
        # The class dicts, not getattr on the object: no property is evaluated.
        for cls in type(holder).__mro__:
            for attribute, value in vars(cls).items():
                if attribute in seen:
                    continue  # overridden in a subclass
                seen.add(attribute)
                definition = activity._Definition.from_callable(value)
                if definition is None or definition.name is None:
                    continue
                if definition.name in found:
                    raise ValueError(
                        f"two activities are named {definition.name!r}: "
                        f"{type(holder).__name__}.{attribute} and {found[definition.name]!r}"
                    )
                found[definition.name] = getattr(holder, attribute)
    return list(found.values())


@dataclass(frozen=True)
class AgentActivitySet:
    """The agent's activity objects, all on one context; built once per agent process."""

    agent: AgentActivities
    locations: CodeLocationActivities
    runs: RunActivities
    ticks: TickActivities

    @classmethod
    def build(cls, context: AgentContext) -> "AgentActivitySet":
        return cls(
            agent=AgentActivities(context),
            locations=CodeLocationActivities(context),
            runs=RunActivities(context),
            ticks=TickActivities(context),
        )

    def activities(self) -> list[Callable[..., Any]]:
        """Every activity of the agent, for ``Worker(activities=...)``."""
        return defined_activities(*(getattr(self, field.name) for field in fields(self)))

    async def aclose(self) -> None:
        """Close the HTTP clients of those that have one."""
        await self.locations.aclose()
        await self.runs.aclose()
        await self.ticks.aclose()
