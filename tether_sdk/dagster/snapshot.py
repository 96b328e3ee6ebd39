"""A Dagster repository as Tether's ``DefinitionsSnapshot``: jobs as their op graphs,
assets, asset checks, partitions, resources, and what Tether cannot honour as warnings.
Schedules and sensors are ``automations.py``'s; run config schemas ``config.py``'s.

A job's steps are its ops, by their full handles: an op inside a graph is ``graph.op``
(nested: ``outer.inner.op``), the step keys Dagster's events carry. An op downstream of a
dynamic output is one step, ``mapped``: the run has one step per output key, ``op[key]``.

Dagster internals used: ``GraphDefinition.iterate_node_handles``, ``get_node``,
``get_op_input_output_handle_pairs``, ``dependency_structure.get_dependency_type``;
``NodeHandle``; ``JobDefinition.asset_layer`` (``get_assets_def_for_node``,
``get_selected_entity_keys_for_node``); ``RepositoryDefinition.asset_checks_defs_by_key``.
"""

import graphlib
from typing import Any

import dagster as dg
from dagster._core.definitions.dependency import DependencyType, NodeHandle
from dagster._core.definitions.graph_definition import GraphDefinition

from tether_api.enums import CodeLocationKind
from tether_api.snapshot import (
    AssetCheckSnapshot,
    AssetSnapshot,
    DefinitionsSnapshot,
    JobSnapshot,
    PartitionDimension,
    PartitionsSnapshot,
    ResourceSnapshot,
    StepSnapshot,
)
from tether_sdk.dagster.config import run_config_schema
from tether_sdk.dagster.metadata import json_metadata
from tether_sdk.dagster.names import JobNames

# Time-window partitions can be many (hourly over years): the snapshot lists the first ones.
MAX_LISTED_KEYS = 1000
IN_PROCESS_EXECUTORS = ("in_process", "multi_or_in_process_executor")


def job_steps(job: dg.JobDefinition) -> list[StepSnapshot]:
    """The job's ops in an order they can run in, each with the steps it takes from."""
    graph = job.graph
    ops = [
        h
        for h in graph.iterate_node_handles()
        if not isinstance(graph.get_node(h).definition, GraphDefinition)
    ]
    deps: dict[str, set[str]] = {str(h): set() for h in ops}
    mapped_inputs: set[str] = set()  # steps with an input that maps a dynamic output
    collects: set[tuple[str, str]] = set()  # (step, input) collecting mapped outputs
    for h in ops:
        parent = graph if h.parent is None else graph.get_node(h.parent).definition
        assert isinstance(parent, GraphDefinition)
        node = parent.node_named(h.name)
        for node_input in node.inputs():
            kind = parent.dependency_structure.get_dependency_type(node_input)
            if kind == DependencyType.DYNAMIC_COLLECT:
                collects.add((str(h), node_input.input_name))
    # Edges that carry a mapping on (every edge but a collect's).
    mapping_edges: set[tuple[str, str]] = set()
    for out_h, in_h in graph.get_op_input_output_handle_pairs(None):
        up, down = str(out_h.node_handle), str(in_h.node_handle)
        deps[down].add(up)
        output = graph.get_node(out_h.node_handle).definition.output_def_named(out_h.output_name)
        collected = (down, in_h.input_name) in collects
        if not collected:
            mapping_edges.add((up, down))
            if output.is_dynamic:
                mapped_inputs.add(down)
    order = list(graphlib.TopologicalSorter(deps).static_order())
    # Mapped: fed a dynamic output, or a mapped step, other than through a collect.
    mapped: set[str] = set()
    for name in order:
        if name in mapped_inputs or any(
            up in mapped and (up, name) in mapping_edges for up in deps[name]
        ):
            mapped.add(name)
    layer = job.asset_layer
    steps = []
    for name in order:
        handle = NodeHandle.from_string(name)
        definition = graph.get_node(handle).definition
        keys: list[str] = []
        check: str | None = None
        if layer.get_assets_def_for_node(handle) is not None:
            for key in layer.get_selected_entity_keys_for_node(handle):
                if isinstance(key, dg.AssetCheckKey):
                    check = f"{key.asset_key.to_user_string()}:{key.name}"
                else:
                    keys.append(key.to_user_string())
        keys.sort()
        steps.append(
            StepSnapshot(
                name=name,
                deps=sorted(deps[name]),
                description=definition.description,
                asset_key=keys[0] if len(keys) == 1 else None,
                asset_keys=keys,
                asset_check=check if not keys else None,
                mapped=name in mapped,
            )
        )
    return steps


def partitions(definition: dg.PartitionsDefinition | None) -> PartitionsSnapshot | None:
    if definition is None:
        return None
    if isinstance(definition, dg.MultiPartitionsDefinition):
        dimensions = []
        for d in definition.partitions_defs:
            found = partitions(d.partitions_def)
            if found is not None:
                dimensions.append(
                    PartitionDimension(name=d.name, **found.model_dump(exclude={"dimensions"}))
                )
        return PartitionsSnapshot(kind="multi", dimensions=dimensions, count=_count(definition))
    if isinstance(definition, dg.DynamicPartitionsDefinition):
        return PartitionsSnapshot(kind="dynamic")
    if isinstance(definition, dg.TimeWindowPartitionsDefinition):
        keys = _keys(definition)
        return PartitionsSnapshot(
            kind="time_window",
            keys=keys[:MAX_LISTED_KEYS],
            count=len(keys),
            cron=definition.cron_schedule,
            timezone=definition.timezone,
            start=definition.start.strftime(definition.fmt),
            fmt=definition.fmt,
            end_offset=definition.end_offset,
        )
    keys = _keys(definition)
    return PartitionsSnapshot(kind="static", keys=keys[:MAX_LISTED_KEYS], count=len(keys))


def _keys(definition: dg.PartitionsDefinition) -> list[str]:
    return list(definition.get_partition_keys())


def _count(definition: dg.PartitionsDefinition) -> int | None:
    try:
        return len(_keys(definition))
    except Exception:  # a dimension whose keys live in an instance (dynamic)
        return None


def assets(repo: dg.RepositoryDefinition) -> list[AssetSnapshot]:
    checks: dict[str, list[AssetCheckSnapshot]] = {}
    for check_key, checks_def in repo.asset_checks_defs_by_key.items():
        check = checks_def.get_spec_for_check_key(check_key)
        checks.setdefault(check_key.asset_key.to_user_string(), []).append(
            AssetCheckSnapshot(
                name=check_key.name, description=check.description, blocking=check.blocking
            )
        )
    external = {k.to_user_string() for k in repo.asset_graph.external_asset_keys}
    definitions = {id(d): d for d in repo.assets_defs_by_key.values()}
    found = []
    for spec in (s for d in definitions.values() for s in d.specs):
        key = spec.key.to_user_string()
        found.append(
            AssetSnapshot(
                key=key,
                deps=sorted(d.asset_key.to_user_string() for d in spec.deps),
                description=spec.description,
                group=spec.group_name or "default",
                kinds=sorted(spec.kinds),
                owners=list(spec.owners),
                metadata=json_metadata(spec.metadata),
                partitions=partitions(spec.partitions_def),
                checks=sorted(checks.get(key, []), key=lambda c: c.name),
                external=key in external,
            )
        )
    return sorted(found, key=lambda a: a.key)


def jobs(repo: dg.RepositoryDefinition, names: JobNames) -> tuple[list[JobSnapshot], list[str]]:
    found, warnings = [], []
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        name = names.tether(job.name)
        executor = job.executor_def.name
        if executor not in IN_PROCESS_EXECUTORS:
            warnings.append(
                f"job {name} declares the {executor} executor: Tether runs every Dagster job "
                "with the in-process executor, one step at a time in the run worker"
            )
        found.append(
            JobSnapshot(
                name=name,
                description=job.description,
                steps=job_steps(job),
                config_schema=run_config_schema(job),
                tags={str(k): str(v) for k, v in job.tags.items()},
                partitions=partitions(job.partitions_def),
            )
        )
    return found, warnings


def resources(repo: dg.RepositoryDefinition) -> list[ResourceSnapshot]:
    return [
        ResourceSnapshot(name=name, description=getattr(definition, "description", None))
        for name, definition in sorted(repo.get_top_level_resources().items())
    ]


def snapshot(
    repo: dg.RepositoryDefinition,
    names: JobNames,
    automations: tuple[list[Any], list[Any], list[str]],
) -> DefinitionsSnapshot:
    """The whole snapshot. ``automations``: schedules, sensors and their warnings."""
    schedules, sensors, automation_warnings = automations
    job_snapshots, job_warnings = jobs(repo, names)
    asset_snapshots = assets(repo)
    warnings = job_warnings + automation_warnings
    for asset in asset_snapshots:
        if asset.partitions is not None and asset.partitions.kind == "dynamic":
            warnings.append(
                f"asset {asset.key} has dynamic partitions: their keys live in a Dagster "
                "instance, which Tether does not keep; its runs cannot name a partition yet"
            )
    return DefinitionsSnapshot(
        kind=CodeLocationKind.DAGSTER,
        warnings=warnings,
        resources=resources(repo),
        jobs=job_snapshots,
        assets=asset_snapshots,
        schedules=schedules,
        sensors=sensors,
    )
