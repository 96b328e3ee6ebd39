"""Tether's custom Temporal search attributes: what tells workflows apart in the Temporal UI
and CLI, where every RunWorkflow otherwise shows COMPLETED (a failed or canceled run is a
workflow that completed) and is named only by its run's UUID.

All four are ``Keyword`` attributes (exact match), set by the workflows:

* ``TetherRunStatus``: a run's status, as ``tether_api.enums.RunStatus`` spells it
  (``STARTING``, ``STARTED``, ``SUCCESS``, ``FAILURE``, ``CANCELING``, ``CANCELED``...).
* ``TetherJob``: the run's job name.
* ``TetherCodeLocation``: the code location's name (runs and CodeLocationWorkflow).
* ``TetherDeployment``: ``"{organization}/{deployment}"``.

Example visibility queries (the Temporal UI's filter box, or ``temporal workflow list
--query ...``)::

    TetherRunStatus = 'FAILURE' AND TetherJob = 'etl'
    TetherDeployment = 'local/dev' AND TetherRunStatus IN ('FAILURE', 'CANCELED')
    TetherCodeLocation = 'quickstart' AND WorkflowType = 'RunWorkflow'
    TetherRunStatus = 'STARTED' AND StartTime < '2026-01-01T00:00:00Z'

A namespace must have them registered before a workflow sets them (else its workflow task
fails, over and over): ``tether dev`` registers them on the server it starts (and adds the
ones an older database lacks); on another cluster, ``worker.search_attributes`` checks them
and says how to add them. ``ALL`` is the one list both use.

Imported by workflows: no side effects, and nothing but ``temporalio.common``.
"""

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

RUN_STATUS = SearchAttributeKey.for_keyword("TetherRunStatus")
JOB = SearchAttributeKey.for_keyword("TetherJob")
CODE_LOCATION = SearchAttributeKey.for_keyword("TetherCodeLocation")
DEPLOYMENT = SearchAttributeKey.for_keyword("TetherDeployment")  # "org/deployment"

KEYS: tuple[SearchAttributeKey[str], ...] = (RUN_STATUS, JOB, CODE_LOCATION, DEPLOYMENT)

# The type names the temporal CLI takes (`--type`, `--search-attribute KEY=TYPE`).
TYPE_NAMES: dict[SearchAttributeIndexedValueType, str] = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}

# Name -> type, for registration: {"TetherRunStatus": "Keyword", ...}.
ALL: dict[str, str] = {key.name: TYPE_NAMES[key.indexed_value_type] for key in KEYS}


def deployment_value(organization: str, deployment: str) -> str:
    """``TetherDeployment``'s value: ``"org/deployment"``."""
    return f"{organization}/{deployment}"
