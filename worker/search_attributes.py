"""Checking that a Temporal namespace has Tether's custom search attributes
(``workflows.search_attributes``), adding the missing ones, and saying how to add them.

A workflow that sets a search attribute its namespace lacks fails its workflow task, again
and again, so the agent checks them before it serves (``missing_search_attributes``) and,
when some are missing, shows the commands that add them (``how_to_add``). ``tether dev``
adds them itself (``add_missing_search_attributes``), and its dev server gets them at start
(``start_dev_flags``).

A server that refuses to list them (``RPCError``: a missing permission, an API key without
the operator role, or the time-skipping test server, which does not implement the call)
raises ``SearchAttributeCheckError``, whose message says what was refused: the caller
decides whether to start without the attributes or to stop. Nothing here returns "don't
know" as a list, so ``if missing:`` never mistakes an unanswered check for a passed one.
"""

import shlex
from collections.abc import Iterable, Sequence

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import ALL, KEYS


class SearchAttributeCheckError(Exception):
    """The server would not list (or add) the namespace's search attributes, or one of
    Tether's is registered with another type; the message says which and what to do."""


def start_dev_flags() -> list[str]:
    """``temporal server start-dev`` flags that register the attributes in a new database
    (one that already exists keeps the attributes it had: see ``add_missing_...``)."""
    flags: list[str] = []
    for name, type_name in ALL.items():
        flags += ["--search-attribute", f"{name}={type_name}"]
    return flags


def _indexed_value_type(name: str) -> IndexedValueType.ValueType:
    key = next(k for k in KEYS if k.name == name)
    return IndexedValueType.ValueType(key.indexed_value_type)


def add_request(namespace: str, names: Iterable[str] = ALL) -> AddSearchAttributesRequest:
    """The operator service's AddSearchAttributes for ``names`` (default: all). The
    time-skipping test server takes it too (though it cannot list them)."""
    return AddSearchAttributesRequest(
        namespace=namespace,
        search_attributes={name: _indexed_value_type(name) for name in names},
    )


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    """The names of Tether's search attributes that ``namespace`` lacks, in ``ALL``'s
    order; empty when all are there.

    Raises SearchAttributeCheckError when the server refuses the operator service's
    ListSearchAttributes, or when one is registered with another type (adding it again
    would not help)."""
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as exc:
        raise SearchAttributeCheckError(
            f"cannot list the search attributes of Temporal namespace {namespace!r}: "
            f"{exc.status.name}: {exc.message} (check them with `temporal operator "
            f"search-attribute list --namespace {namespace}`)"
        ) from exc
    registered = {**response.system_attributes, **response.custom_attributes}
    missing = []
    for name, type_name in ALL.items():
        if name not in registered:
            missing.append(name)
        elif registered[name] != _indexed_value_type(name):
            found = IndexedValueType.Name(registered[name]).removeprefix("INDEXED_VALUE_TYPE_")
            raise SearchAttributeCheckError(
                f"search attribute {name} of Temporal namespace {namespace!r} is of type "
                f"{found}, Tether needs {type_name}: remove it (`temporal operator "
                f"search-attribute remove --namespace {namespace} --name {name}`), then "
                "create it again"
            )
    return missing


async def add_missing_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the attributes ``namespace`` lacks; the names added (empty: all were there).

    Raises SearchAttributeCheckError when the server refuses to list or add them (Temporal
    Cloud, for one, adds them only through its own tools). A server other than the dev
    server may take a few seconds before workflows can set a new attribute."""
    missing = await missing_search_attributes(client, namespace)
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(add_request(namespace, missing))
    except RPCError as exc:
        # Added meanwhile by someone else: what counts is that they are there now.
        if exc.status != RPCStatusCode.ALREADY_EXISTS or await missing_search_attributes(
            client, namespace
        ):
            raise SearchAttributeCheckError(
                f"cannot add search attributes {', '.join(missing)} to Temporal namespace "
                f"{namespace!r}: {exc.status.name}: {exc.message}"
            ) from exc
    return missing


def how_to_add(missing: Sequence[str], namespace: str, address: str) -> str:
    """The temporal CLI commands that add ``missing`` (names from ``ALL``) to ``namespace``
    at ``address``, one line per attribute (the CLI's ``create`` takes several ``--name``
    but, in 1.9, adds only the first); empty for none. Add the connection options
    (``--tls-cert-path``, ``--api-key``...) a secured server needs."""
    return "\n".join(
        shlex.join(
            [
                *("temporal", "operator", "search-attribute", "create"),
                *("--address", address, "--namespace", namespace),
                *("--name", name, "--type", ALL[name]),
            ]
        )
        for name in missing
    )
