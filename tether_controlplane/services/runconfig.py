"""Validation of a run config against its job's JSON schema (``JobSnapshot.config_schema``).

The control plane checks a config when a run is created, so that a wrong one is refused with
every bad field named instead of creating a run that fails in the worker. A key the schema does
not define is refused where it says ``additionalProperties: false`` (the SDK says so for every
config model that does not take extra keys on purpose). The worker still validates with the
job's pydantic model itself: the schema is what the code location last reported, and pydantic
may accept a little more than its schema says (lax coercions).
"""

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable

from tether_api.configkeys import unknown_key_message
from tether_api.user_api import RUN_CONFIG_LOC
from tether_api.wire import FieldError

log = logging.getLogger("tether.controlplane")

# A config with a bad value in each of thousands of list items must not make an answer of
# megabytes: the list of errors stops here, and the one-line detail shows fewer still.
MAX_ERRORS = 100
MAX_DETAIL_ERRORS = 10
_MAX_VALUE_CHARS = 60
_MAX_MESSAGE_CHARS = 300
_NULL_BRANCH = {"type": "null"}
# A job without a config model accepts only an empty config (as the worker does).
NO_CONFIG_MODEL = "this job takes no config (it has no config model)"


def config_errors(
    schema: dict[str, Any] | None, run_config: dict[str, Any], limit: int = MAX_ERRORS
) -> list[FieldError]:
    """Every way ``run_config`` breaks ``schema``, sorted by field, at most ``limit``.

    ``schema`` None means the job has no config model: then any key is an error. A schema
    that cannot be used (invalid, or with a ``$ref`` it cannot resolve) checks nothing: the
    worker still validates with the model itself."""
    if schema is None:
        found = [
            FieldError(loc=[*RUN_CONFIG_LOC, key], msg=NO_CONFIG_MODEL, type="additionalProperties")
            for key in run_config
        ]
        return _sorted(found)[:limit]
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
        errors = [
            field_error
            for error in cls(schema).iter_errors(run_config)
            for leaf in _leaves(error)
            for field_error in _field_errors(leaf)
        ]
    except (SchemaError, Unresolvable, re.error) as exc:
        # The code location's to fix, not the caller's: do not refuse runs for it.
        reason = str(getattr(exc, "message", exc)).splitlines()[0]
        log.warning("run config not checked: the job's config schema is unusable: %s", reason)
        return []
    return _sorted(errors)[:limit]


def describe(job: str, errors: Sequence[FieldError]) -> str:
    """One readable line, e.g. ``invalid run config for job 'etl': run_config.rows: 'x' is
    not of type 'integer'; run_config.source: Field required``."""
    shown = [_where_msg(e) for e in errors[:MAX_DETAIL_ERRORS]]
    if len(errors) > MAX_DETAIL_ERRORS:
        shown.append(f"and {len(errors) - MAX_DETAIL_ERRORS} more (see errors)")
    return f"invalid run config for job {job!r}: " + "; ".join(shown)


def _where_msg(error: FieldError) -> str:
    where = ".".join(str(p) for p in error.loc if p != "body")
    return f"{where}: {error.msg}" if where else error.msg


def _sorted(errors: Iterable[FieldError]) -> list[FieldError]:
    # Field paths mix names and list indexes: compare like with like.
    def key(error: FieldError) -> list[tuple[int, int, str]]:
        return [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in error.loc]

    return sorted(errors, key=key)


def _leaves(error: ValidationError) -> list[ValidationError]:
    """An optional field (``anyOf: [X, {type: null}]``) given a wrong non-null value: the
    errors against X, which name the bad part, rather than 'not valid under any of the
    given schemas'."""
    if error.validator in ("anyOf", "oneOf") and error.context and error.instance is not None:
        branches = error.validator_value
        others = [i for i, branch in enumerate(branches) if branch != _NULL_BRANCH]
        if len(others) == 1 and len(branches) > 1:
            inner = [c for c in error.context if c.relative_schema_path[0] == others[0]]
            if inner:
                return [leaf for c in inner for leaf in _leaves(c)]
    return [error]


def _field_errors(error: ValidationError) -> list[FieldError]:
    path: list[str | int] = [*RUN_CONFIG_LOC, *error.absolute_path]
    kind = str(error.validator)
    if kind == "required":
        # One error per missing property: put the property itself in the location.
        missing = [
            p
            for p in error.validator_value
            if isinstance(error.instance, dict)
            and p not in error.instance
            and error.message == f"{p!r} is a required property"
        ]
        if missing:
            return [FieldError(loc=[*path, missing[0]], msg="Field required", type=kind)]
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        extras = _extra_properties(error.instance, error.schema)
        if extras:
            # Each unknown key at its own path, with the keys its object takes (the SDK's
            # worker says it the same way).
            msg = unknown_key_message(list(error.absolute_path), error.schema.get("properties", {}))
            return [FieldError(loc=[*path, extra], msg=msg, type=kind) for extra in extras]
    if kind == "type":
        expected = error.validator_value
        names = (
            " or ".join(repr(t) for t in expected) if isinstance(expected, list) else repr(expected)
        )
        message = f"{_short(error.instance)} is not of type {names}"
    else:
        message = error.message
        if len(message) > _MAX_MESSAGE_CHARS:
            message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    return [FieldError(loc=path, msg=message, type=kind)]


def _extra_properties(instance: dict[str, Any], schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    defined = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in defined and not any(re.search(p, key) for p in patterns)
    ]


def _short(value: Any) -> str:
    # A whole nested object or a long string in a message would bury the point.
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."
