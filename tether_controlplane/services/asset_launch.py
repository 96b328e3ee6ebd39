"""Launching a materialization of selected assets: the job of their code location that
holds them all (smallest first), run with the asset-selection tag when it holds more, and
the partition tags, created through ``runs.create`` so its config, tags and partition are
checked as any run's are."""

import json

from pydantic import ValidationError
from sqlalchemy.orm import Session

from tether_api import runtags
from tether_api.assets import AssetMaterializationCreate
from tether_api.user_api import RunCreate
from tether_api.wire import MAX_TAGS
from tether_controlplane.errors import Invalid
from tether_controlplane.services import runs
from tether_controlplane.services.asset_definitions import Catalog, catalog
from tether_controlplane.tables import DeploymentRow, RunRow

# Tags the body's own fields set: given in `tags`, they would contradict them.
RESERVED_TAGS = (runtags.ASSET_SELECTION_TAG, *runtags.PARTITION_TAGS)


def _listed(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys)


def plan(cat: Catalog, assets: list[str]) -> tuple[str, str, bool]:
    """(code location, job, whether the job holds more than ``assets``) for a run that
    materializes ``assets``. Invalid names what is wrong and how to fix it."""
    selected = list(dict.fromkeys(assets))
    unknown = [k for k in selected if k not in cat.assets]
    if unknown:
        raise Invalid(
            f"no code location of this deployment declares asset(s) {_listed(unknown)} "
            "(`tether assets list` lists the deployment's assets)",
            loc=("body", "assets"),
        )
    where: dict[str, list[str]] = {}
    for key in selected:
        where.setdefault(cat.assets[key].code_location, []).append(key)
    if len(where) > 1:
        described = "; ".join(f"{_listed(keys)} in {loc!r}" for loc, keys in sorted(where.items()))
        raise Invalid(
            f"the assets are in different code locations ({described}): a run belongs to one "
            "location, so launch one materialization per location",
            loc=("body", "assets"),
        )
    (location_name,) = where
    location = cat.locations[location_name]
    wanted = set(selected)
    # A job that holds them all holds the first; its jobs come smallest first.
    candidates = [
        name for name in cat.assets[selected[0]].jobs if wanted <= location.job_assets[name]
    ]
    if not candidates:
        raise Invalid(
            f"no job of code location {location_name!r} materializes all of "
            f"{_listed(selected)}: add them to one asset_job (or launch each on its own)",
            loc=("body", "assets"),
        )
    job = candidates[0]
    return location_name, job, location.job_assets[job] != wanted


def materialize(session: Session, dep: DeploymentRow, body: AssetMaterializationCreate) -> RunRow:
    reserved = [t for t in body.tags if t in RESERVED_TAGS]
    if reserved:
        raise Invalid(
            f"tag {reserved[0]!r} is set from the request's own fields: name the assets in "
            "'assets' and the partition in 'partition' or 'partition_range'",
            loc=("body", "tags", reserved[0]),
        )
    if body.partition is not None and body.partition_range is not None:
        raise Invalid(
            "give a partition or a partition_range, not both",
            loc=("body", "partition_range"),
        )
    cat = catalog(session, dep)
    location_name, job, subset = plan(cat, body.assets)
    tags = dict(body.tags)
    if subset:
        tags[runtags.ASSET_SELECTION_TAG] = json.dumps(list(dict.fromkeys(body.assets)))
    location = cat.locations[location_name]
    partitions = location.jobs[job].partitions
    # How the job's runs name a partition: what its partitions say (as run validation reads).
    kind = partitions.location_kind if partitions is not None else location.kind
    try:
        tags.update(runtags.partition_tags(kind, body.partition, body.partition_range))
    except ValueError as exc:
        raise Invalid(str(exc), loc=("body", "partition_range")) from None
    if len(tags) > MAX_TAGS:
        raise Invalid(
            f"a run has at most {MAX_TAGS} tags, and this one would have {len(tags)} with "
            "those its assets and partition need: leave some out",
            loc=("body", "tags"),
        )
    try:
        create = RunCreate(
            code_location=location_name, job=job, run_config=body.run_config, tags=tags
        )
    except ValidationError as exc:  # names the snapshot made valid elsewhere; defensive
        raise Invalid(f"cannot launch job {job!r}: {exc.errors()[0]['msg']}") from None
    return runs.create(session, dep, create)
