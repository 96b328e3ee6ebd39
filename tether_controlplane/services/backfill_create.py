"""Creating a backfill: its job (named, or the one a materialization of its assets would
run), its partitions resolved to keys (a range, a list, all, or only the missing or failed of
them), checked as its runs will be, and stored as one PENDING row per partition, inserted in
one statement. The pass (backfill_pass.py) launches them."""

import json
import uuid
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from tether_api.assets import AssetPartitionStatus
from tether_api.backfills import (
    MAX_BACKFILL_PARTITIONS,
    BackfillCreate,
    BackfillStatus,
    PartitionFilter,
)
from tether_api.enums import CodeLocationKind, RunStatus
from tether_api.partitions import all_keys, key_test, keys_between, unknown_key_error
from tether_api.runtags import (
    ASSET_SELECTION_TAG,
    BACKFILL_TAG,
    PARTITION_TAG,
    PARTITION_TAGS,
    TETHER_PARTITION_TAG,
)
from tether_api.snapshot import DefinitionsSnapshot, JobSnapshot
from tether_controlplane.errors import Invalid
from tether_controlplane.services import (
    asset_definitions,
    asset_launch,
    locations,
    runconfig,
)
from tether_controlplane.services import assets as catalog
from tether_controlplane.services import runtags as run_tags
from tether_controlplane.services.asset_definitions import job_assets
from tether_controlplane.services.backfill_pass import P, first_error, location_snapshot, run_body
from tether_controlplane.services.tenancy import Principal
from tether_controlplane.tables import (
    CodeLocationRow,
    DeploymentRow,
    RunRow,
    RunTagRow,
    TokenRow,
    utcnow,
)
from tether_controlplane.tables_backfills import BackfillPartitionRow, BackfillRow


def create(
    session: Session, dep: DeploymentRow, principal: Principal, body: BackfillCreate
) -> BackfillRow:
    """Resolve ``body`` to its job and partitions and store the backfill with a PENDING row
    per partition; the loop launches them. Bad input raises Invalid (422) naming the field,
    an unknown location NotFound, a location without definitions yet Conflict."""
    location, snapshot, job, asset_keys = _resolve_job(session, dep, body)
    if job.partitions is None:
        raise Invalid(
            f"job {job.name!r} of code location {location.name!r} is not partitioned: a "
            "backfill launches one run per partition; launch one run of it with "
            f"`tether runs launch {location.name} {job.name}`",
            loc=("body", "job"),
        )
    now = utcnow()
    keys, selection = _select_keys(session, dep, location, snapshot, job, asset_keys, body, now)
    errors = runconfig.config_errors(job.config_schema, body.run_config)
    if errors:
        raise Invalid(runconfig.describe(job.name, errors), errors=errors)
    _check_tags(body)
    row = BackfillRow(
        public_id=str(uuid.uuid4()),
        deployment_id=dep.id,
        code_location=location.name,
        job=job.name,
        assets=list(body.assets) if body.assets else None,
        selection=selection,
        run_config=body.run_config,
        tags=_selection_tags(job, asset_keys if body.assets else None) | body.tags,
        status=BackfillStatus.REQUESTED,
        max_in_flight=body.max_in_flight or dep.run_concurrency_limit,
        runs_per_minute=body.runs_per_minute,
        partition_count=len(keys),
        first_partition=keys[0],
        last_partition=keys[-1],
        pending=len(keys),
        launched=0,
        succeeded=0,
        failed=0,
        canceled=0,
        created_by=_actor_name(session, principal),
        created_at=now,
        updated_at=now,
    )
    # The first run as the loop will create it: tags that would make any run invalid (too
    # many, a bad asset selection) are refused now, not partition by partition.
    try:
        first = run_body(row, job.partitions.location_kind, keys[0], 1, 0)
    except ValidationError as exc:
        raise Invalid(f"the backfill's runs would be invalid: {first_error(exc)}") from None
    refused = run_tags.tag_errors(job, first.tags)
    if refused:
        raise Invalid(f"invalid runs of job {job.name!r}: {refused[0].msg}", errors=refused)
    session.add(row)
    session.flush()
    # One statement for them all (executemany / insertmanyvalues): 10,000 rows in well
    # under a second.
    session.execute(
        insert(BackfillPartitionRow),
        [
            {
                "backfill_id": row.id,
                "position": position,
                "partition_key": key,
                "status": P.PENDING,
                "attempt": 1,
                "updated_at": now,
            }
            for position, key in enumerate(keys)
        ],
    )
    return row


def _resolve_job(
    session: Session, dep: DeploymentRow, body: BackfillCreate
) -> tuple[CodeLocationRow, DefinitionsSnapshot, JobSnapshot, list[str]]:
    """The backfill's location, its snapshot, its job, and the asset keys it makes. Assets
    without a job: the job a materialization of them would run (asset_launch.plan)."""
    if not body.assets and (body.code_location is None or body.job is None):
        raise Invalid(
            "name what to backfill: code_location and job, or assets",
            loc=("body", "job" if body.code_location else "code_location"),
        )
    location_name, job_name = body.code_location, body.job
    if body.assets and (job_name is None or location_name is None):
        declared = asset_definitions.catalog(session, dep)
        planned, smallest, _ = asset_launch.plan(declared, body.assets)
        job_name = job_name or smallest
        if location_name is not None and planned != location_name:
            raise Invalid(
                f"the assets are materialized in code location {planned!r}, not "
                f"{location_name!r}: leave code_location out, or name that one",
                loc=("body", "code_location"),
            )
        location_name = planned
    assert location_name is not None and job_name is not None
    location = locations.find(session, dep, location_name)
    snapshot = location_snapshot(session, location)
    job = snapshot.job(job_name)
    if job is None:
        known = ", ".join(j.name for j in snapshot.jobs) or "(none)"
        raise Invalid(
            f"job {job_name!r} is not defined in code location {location.name!r}; its jobs "
            f"are: {known}",
            loc=("body", "job"),
        )
    held = job_assets(job)
    if body.assets:
        missing = [k for k in body.assets if k not in held]
        if missing:
            raise Invalid(
                f"job {job.name!r} does not materialize {', '.join(missing)} (its assets: "
                f"{', '.join(sorted(held)) or 'none'})",
                loc=("body", "assets"),
            )
    return location, snapshot, job, list(body.assets) if body.assets else sorted(held)


def _selection_tags(job: JobSnapshot, selected: list[str] | None) -> dict[str, str]:
    """The asset-selection tag of runs of only some of the job's assets (none for all)."""
    if selected is None or set(selected) >= job_assets(job):
        return {}
    return {ASSET_SELECTION_TAG: json.dumps(sorted(set(selected)))}


def _check_tags(body: BackfillCreate) -> None:
    for reserved in (BACKFILL_TAG, *PARTITION_TAGS):
        if reserved in body.tags:
            raise Invalid(
                f"tag {reserved} is set by the backfill on each of its runs: leave it out",
                loc=("body", "tags", reserved),
            )
    if body.assets and ASSET_SELECTION_TAG in body.tags:
        raise Invalid(
            f"tag {ASSET_SELECTION_TAG} is set from the backfill's assets: leave it out",
            loc=("body", "tags", ASSET_SELECTION_TAG),
        )


def _select_keys(
    session: Session,
    dep: DeploymentRow,
    location: CodeLocationRow,
    snapshot: DefinitionsSnapshot,
    job: JobSnapshot,
    asset_keys: list[str],
    body: BackfillCreate,
    now: datetime,
) -> tuple[list[str], str]:
    """The keys to launch, in order, and how they were chosen as a person would say it."""
    partitions = job.partitions
    assert partitions is not None
    given = [
        name
        for name, value in (
            ("partitions", body.partitions),
            ("partition_range", body.partition_range),
            ("all_partitions", body.all_partitions or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise Invalid(
            f"give one of partitions, partition_range or all_partitions, not {' and '.join(given)}",
            loc=("body", given[1]),
        )
    if not given and body.only is None:
        raise Invalid(
            "name the partitions to backfill: partitions (a list), partition_range "
            "([first, last]), all_partitions (true), or only ('missing' or 'failed')",
            loc=("body", "partitions"),
        )
    owner = f"job {job.name!r}"
    try:
        if body.partitions is not None:
            keys = list(dict.fromkeys(body.partitions))  # a key given twice runs once
            known = key_test(partitions, now)
            for key in keys:
                if not known(key):
                    raise Invalid(
                        unknown_key_error(partitions, key, now, owner), loc=("body", "partitions")
                    )
            selection = f"{len(keys)} listed" if len(keys) > 1 else f"partition {keys[0]}"
        elif body.partition_range is not None:
            first, last = body.partition_range
            try:
                keys = keys_between(partitions, first, last, now)
            except ValueError as exc:
                raise Invalid(f"{owner}: {exc}", loc=("body", "partition_range")) from None
            selection = f"range {first}..{last}"
        else:
            keys = all_keys(partitions, now)
            selection = "all"
    except ValueError as exc:  # a definition the snapshot cannot compute (bad timezone)
        raise Invalid(f"the partitions of {owner} cannot be computed: {exc}") from None
    if len(keys) > MAX_BACKFILL_PARTITIONS:
        raise Invalid(
            f"{len(keys)} partitions are more than one backfill launches "
            f"({MAX_BACKFILL_PARTITIONS}): split them into ranges",
            loc=("body", given[0] if given else "only"),
        )
    if body.only is not None:
        before = len(keys)
        outcome = _prior_outcomes(session, dep, location, snapshot, job, asset_keys, keys)
        keys = [k for k in keys if outcome.get(k) == body.only]
        selection += f", {body.only.value} only"
        if not keys:
            raise Invalid(
                f"none of the {before} partition(s) of {owner} ({selection}) is "
                f"{body.only.value}: nothing to backfill",
                loc=("body", "only"),
            )
    if not keys:
        raise Invalid(
            f"{owner} has no partitions yet ({selection}): nothing to backfill",
            loc=("body", given[0] if given else "only"),
        )
    return keys, selection


def _prior_outcomes(
    session: Session,
    dep: DeploymentRow,
    location: CodeLocationRow,
    snapshot: DefinitionsSnapshot,
    job: JobSnapshot,
    asset_keys: list[str],
    keys: list[str],
) -> dict[str, PartitionFilter | None]:
    """Whether each key is missing or failed (None: made, or being made). For assets, from
    the catalog; for a job without partitioned assets, from its latest run of each key."""
    partitioned = {a.key for a in snapshot.assets if a.partitions is not None}
    assets = [k for k in asset_keys if k in partitioned] or (
        [] if snapshot.assets else asset_keys  # no asset definitions: trust the job's steps
    )
    if assets:
        stored = catalog.statuses(session, dep.id, assets)
        outcome: dict[str, PartitionFilter | None] = {}
        for key in keys:
            found = [stored.get(a, {}).get(key) for a in assets]
            if AssetPartitionStatus.FAILED in found:
                outcome[key] = PartitionFilter.FAILED
            elif any(s != AssetPartitionStatus.MATERIALIZED for s in found):
                outcome[key] = PartitionFilter.MISSING
            else:
                outcome[key] = None
        return outcome
    assert job.partitions is not None
    kind = job.partitions.location_kind
    tag = PARTITION_TAG if kind == CodeLocationKind.DAGSTER else TETHER_PARTITION_TAG
    latest = (
        select(RunTagRow.value.label("key"), func.max(RunRow.pk).label("pk"))
        .join(RunRow, RunRow.pk == RunTagRow.run_pk)
        .where(
            RunTagRow.key == tag,
            RunRow.deployment_id == dep.id,
            RunRow.code_location == location.name,
            RunRow.job == job.name,
        )
        .group_by(RunTagRow.value)
        .subquery()
    )
    last_status: dict[str, RunStatus] = {
        key: status
        for key, status in session.execute(
            select(latest.c.key, RunRow.status).join(RunRow, RunRow.pk == latest.c.pk)
        )
    }
    result: dict[str, PartitionFilter | None] = {}
    for key in keys:
        status = last_status.get(key)
        if status is None or status == RunStatus.CANCELED:
            result[key] = PartitionFilter.MISSING
        elif status == RunStatus.FAILURE:
            result[key] = PartitionFilter.FAILED
        else:
            result[key] = None
    return result


def _actor_name(session: Session, principal: Principal) -> str:
    """The name of the token that acts (a web session's: its user token's), as the audit
    log names it."""
    actor = session.get(TokenRow, principal.token_id)
    if actor is None:
        return f"token-{principal.token_id}"
    if actor.parent_id is not None:
        parent = session.get(TokenRow, actor.parent_id)
        if parent is not None:
            return parent.name
    return actor.name
