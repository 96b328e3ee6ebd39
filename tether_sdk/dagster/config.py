"""A Dagster job's run config: its JSON Schema for the control plane, its validation by
Dagster's own config system with Tether-shaped errors, and the steps a run would execute.

``run_config_schema(job)`` walks the job's config type tree into a JSON Schema (draft
2020-12, no ``$defs``) that the control plane checks a run config against when a run is
created (``tether_controlplane.services.runconfig``) and that the launchpad lists fields from
(``tether_api.configschema``). It mirrors Dagster's validation rules
(``dagster._config.validate``), so both give the same verdict, except for these, which the
schema lets through and Dagster still refuses (at the code server's ``/validate`` and in the
run worker): a missing environment variable behind ``{"env": ...}``; ``1.0`` for an ``Int``
(JSON Schema calls it an integer); an aliased field given under both names; whatever a config
mapping's function rejects. (Dagster accepts ``true`` for a ``Float``; the schema does not.)

- The ``execution`` and ``loggers`` blocks are left out of the top level, which admits any
  other key: Tether runs every job in process, and Dagster still checks those blocks.
- ``anyOf: [X, {"type": "null"}]`` marks a Noneable (the form the control plane unwraps to
  name the bad part); ``StringSource``-style unions are ``{"type": ["string", "object"],
  ...the {"env": VAR} object's keywords}``, one schema, so that errors are type errors.
- A Selector is an object with at most one key (``minProperties: 1`` when Dagster needs
  one); a Selector's field whose type has fields also takes null when ``{}`` would do, as in
  Dagster (``storage: {filesystem: }``).
- ``default`` (when JSON can hold it) and ``description`` come from each Field, else from its
  type; enum values are their config names (``"FAST"``), which is what Dagster accepts.

``validate_run_config(job, config)`` uses ``dagster.validate_run_config`` and turns its
errors' evaluation stacks into dotted paths (``ops.sink.config.tags[1]``): a missing or an
unexpected field is named itself (``ops.sink.config.table``), one error each, as pydantic and
the control plane do; messages are Dagster's without their ``at path root:...`` part.

Dagster internals used (pinned by tests/dagster/test_dagster_config.py):
``dagster._config`` (``ConfigTypeKind``, ``ConfigScalarKind``, the config type classes and
their attributes: ``fields``, ``field_aliases``, ``inner_type``, ``key_type``,
``scalar_type``, ``non_scalar_type``, ``enum_values``, ``scalar_kind``),
``dagster._config.errors`` (``EvaluationError``, ``DagsterEvaluationErrorReason`` and the
error data records), ``dagster._config.stack`` (the evaluation stack entries,
``get_friendly_path_msg``), ``dagster._utils.error.SerializableErrorInfo`` (a failed
post-processing's cause), ``dagster._core.execution.api.create_execution_plan`` and the
plan's ``get_all_steps_in_topo_order`` / steps' ``node_handle``. Public:
``dagster.validate_run_config``, ``JobDefinition.run_config_schema`` (``config_type``,
``config_mapping``), ``DagsterInvalidConfigError.errors``.
"""

import copy
import json
import re
from collections.abc import Iterator
from typing import Any, cast

import dagster
from dagster import DagsterInvalidConfigError, DagsterUserCodeExecutionError, JobDefinition
from dagster._config import Array as ConfigArray
from dagster._config import (
    ConfigScalar,
    ConfigScalarKind,
    ConfigType,
    ConfigTypeKind,
    Enum,
    Map,
    Noneable,
    Permissive,
    ScalarUnion,
    Selector,
    Shape,
)
from dagster._config.errors import (
    DagsterEvaluationErrorReason,
    EvaluationError,
    FieldNotDefinedErrorData,
    FieldsNotDefinedErrorData,
    MissingFieldErrorData,
    MissingFieldsErrorData,
)
from dagster._config.stack import (
    EvaluationStackEntry,
    EvaluationStackListItemEntry,
    EvaluationStackMapKeyEntry,
    EvaluationStackMapValueEntry,
    EvaluationStackPathEntry,
    get_friendly_path_msg,
)
from dagster._core.execution.api import create_execution_plan
from dagster._utils.error import SerializableErrorInfo

from tether_api.codeserver import ConfigError

# Top-level blocks of a run config that Tether's schema leaves out (see the module docstring).
HIDDEN_TOP_LEVEL = ("execution", "loggers")
NULL: dict[str, Any] = {"type": "null"}
ENV_DESCRIPTION = (
    "An environment variable holding the value (read by the code server and run worker)."
)

_SCALAR_TYPES = {
    ConfigScalarKind.INT: "integer",
    ConfigScalarKind.STRING: "string",
    ConfigScalarKind.FLOAT: "number",
    ConfigScalarKind.BOOL: "boolean",
}
# Keywords that apply to one JSON type only: a scalar-or-X union can share one schema.
_OBJECT_KEYWORDS = {
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "propertyNames",
}
_ARRAY_KEYWORDS = {"items"}


# --- the JSON Schema ------------------------------------------------------------------------


def run_config_schema(job: JobDefinition) -> dict[str, Any]:
    """The JSON Schema of ``job``'s run config (draft 2020-12, self-contained).

    Without a config mapping it is the run config's own shape minus ``execution`` and
    ``loggers``, which stay allowed (as objects, checked by Dagster alone) while any other
    unknown key at the top is refused, as Dagster refuses it; with one (``@job(config=
    ConfigMapping(...))``) it is the mapping's outer schema, as is: that is all a run config
    of such a job may hold."""
    schema_def = job.run_config_schema
    schema = _schema(schema_def.config_type)
    if schema_def.config_mapping is None and schema.get("type") == "object":
        props = schema.get("properties", {})
        for name in HIDDEN_TOP_LEVEL:
            props.pop(name, None)
        required = [r for r in schema.get("required", []) if r not in HIDDEN_TOP_LEVEL]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
        schema["patternProperties"] = {f"^({'|'.join(HIDDEN_TOP_LEVEL)})$": {"type": "object"}}
        schema["additionalProperties"] = False
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _schema(ct: ConfigType) -> dict[str, Any]:
    kind = ct.kind
    s: dict[str, Any]
    if kind == ConfigTypeKind.ANY:
        s = {}
    elif kind == ConfigTypeKind.SCALAR and isinstance(ct, ConfigScalar):
        scalar = _SCALAR_TYPES.get(ct.scalar_kind)
        s = {"type": scalar} if scalar else {}
    elif kind == ConfigTypeKind.ENUM and isinstance(ct, Enum):
        s = {"type": "string", "enum": [v.config_value for v in ct.enum_values]}
    elif kind == ConfigTypeKind.NONEABLE and isinstance(ct, Noneable):
        inner = _schema(ct.inner_type)
        s = {} if inner == {} else {"anyOf": [inner, dict(NULL)]}
    elif kind == ConfigTypeKind.ARRAY and isinstance(ct, ConfigArray):
        # An array's own description is Dagster's "List of <key>": not worth showing.
        return {"type": "array", "items": _schema(ct.inner_type)}
    elif kind == ConfigTypeKind.MAP and isinstance(ct, Map):
        s = {"type": "object", "additionalProperties": _schema(ct.inner_type)}
        keys = _schema(ct.key_type)
        if keys.get("type") != "string" or len(keys) > 1:
            # JSON keys are strings: an Int-keyed map takes none, as in Dagster.
            s["propertyNames"] = keys
    elif kind == ConfigTypeKind.SCALAR_UNION and isinstance(ct, ScalarUnion):
        s = _scalar_union(ct)
    elif kind in (
        ConfigTypeKind.STRICT_SHAPE,
        ConfigTypeKind.PERMISSIVE_SHAPE,
        ConfigTypeKind.SELECTOR,
    ) and isinstance(ct, (Shape, Permissive, Selector)):
        s = _fields_schema(ct)
    else:  # a kind this walk does not know (a newer Dagster): anything, Dagster still checks
        s = {}
    if ct.description:
        s.setdefault("description", ct.description)
    return s


def _scalar_union(ct: ScalarUnion) -> dict[str, Any]:
    """A scalar or a structure (Dagster picks by value: a dict or list takes the structure)."""
    scalar = _schema(ct.scalar_type)
    structure = _schema(cast(ConfigType, ct.non_scalar_type))
    if _is_env_selector(ct.non_scalar_type):
        structure["properties"]["env"].setdefault("description", ENV_DESCRIPTION)
    kind = structure.get("type")
    own = _OBJECT_KEYWORDS if kind == "object" else _ARRAY_KEYWORDS if kind == "array" else None
    if (
        own is not None
        and set(scalar) == {"type"}
        and isinstance(scalar["type"], str)
        and set(structure) <= own | {"type", "description"}
    ):
        merged = {k: v for k, v in structure.items() if k != "description"}
        merged["type"] = [scalar["type"], kind]
        return merged
    return {"anyOf": [scalar, structure]}


def _is_env_selector(ct: object) -> bool:
    return isinstance(ct, Selector) and list(ct.fields) == ["env"]


def _fields_schema(ct: Shape | Permissive | Selector) -> dict[str, Any]:
    kind = ct.kind
    props: dict[str, Any] = {}
    required: list[str] = []
    aliases = ct.field_aliases if isinstance(ct, Shape) else {}
    for name, f in ct.fields.items():
        p = _schema(f.config_type)
        if kind == ConfigTypeKind.SELECTOR and _fills_in_from_null(f.config_type):
            # Dagster reads `{name: null}` as `{name: {}}` in a selector.
            p = _nullable(p)
        if f.description:
            p["description"] = f.description
        if f.default_provided:
            default = _jsonable(f.default_value)
            if default is not _MISSING:
                p["default"] = default
        props[name] = p
        if name in aliases:
            # Either name will do (Dagster refuses both at once; JSON Schema does not).
            props[aliases[name]] = copy.deepcopy(p)
        elif f.is_required:
            required.append(name)
    s: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "additionalProperties": kind == ConfigTypeKind.PERMISSIVE_SHAPE,
    }
    if kind == ConfigTypeKind.SELECTOR:
        # Exactly one key; `{}` only when a single field may be left out.
        if len(props) != 1:
            s.update(minProperties=1, maxProperties=1)
        elif required:
            s["required"] = required
    elif required:
        s["required"] = required
    return s


def _fills_in_from_null(ct: ConfigType) -> bool:
    """Would Dagster take ``{}`` for this type (so ``null`` for it in a selector)?"""
    if isinstance(ct, (Shape, Permissive)):
        return not any(f.is_required for f in ct.fields.values())
    if isinstance(ct, Selector):
        return len(ct.fields) == 1 and not next(iter(ct.fields.values())).is_required
    return False


def _nullable(s: dict[str, Any]) -> dict[str, Any]:
    description = s.pop("description", None)
    out: dict[str, Any] = {"anyOf": [s, dict(NULL)]}
    if description:
        out["description"] = description
    return out


_MISSING = object()


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON (a copy), or _MISSING when JSON cannot hold it."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return _MISSING
    return json.loads(text)


# --- validation -----------------------------------------------------------------------------


def validate_run_config(
    job: JobDefinition, run_config: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[ConfigError]]:
    """``(processed, [])`` when Dagster accepts ``run_config`` for ``job``, else ``(None,
    errors)``. ``processed`` is Dagster's resolved config (defaults filled in, ``{"env":
    VAR}`` replaced by the variable's value: do not send it anywhere). Never raises for a
    bad config, nor for a config mapping function that fails on it."""
    if not isinstance(run_config, dict):
        return None, [
            ConfigError(
                field="",
                message=f"the run config must be an object (a mapping), not "
                f"{type(run_config).__name__}",
            )
        ]
    bad_keys = [k for k in run_config if not isinstance(k, str)]
    if bad_keys:
        return None, [
            ConfigError(field="", message=f"run config keys must be strings, not {bad_keys[0]!r}")
        ]
    try:
        processed = dagster.validate_run_config(job, run_config)
    except DagsterInvalidConfigError as exc:
        return None, [e for err in exc.errors for e in _config_errors(err)]
    except DagsterUserCodeExecutionError as exc:  # a config mapping function failing
        cause = exc.user_exception
        message = f"{exc} {type(cause).__name__}: {cause}" if cause else str(exc)
        return None, [ConfigError(field="", message=message)]
    except Exception as exc:  # anything else the config made Dagster raise
        return None, [ConfigError(field="", message=f"{type(exc).__name__}: {exc}")]
    return dict(processed), []


def _config_errors(err: EvaluationError) -> Iterator[ConfigError]:
    path = _path(err.stack)
    message = _strip_path(err.message, err.stack)
    data = err.error_data
    if isinstance(data, MissingFieldErrorData):
        yield ConfigError(field=_join(path, data.field_name), message=message)
    elif isinstance(data, MissingFieldsErrorData):
        for name in data.field_names:
            yield ConfigError(
                field=_join(path, name),
                message=f'Missing required config entry "{name}". You must provide this value '
                "in your run config.",
            )
    elif isinstance(data, FieldNotDefinedErrorData):
        yield ConfigError(field=_join(path, data.field_name), message=message)
    elif isinstance(data, FieldsNotDefinedErrorData):
        expected = re.search(r"\. Expected: (.*)$", message, re.DOTALL)
        for name in data.field_names:
            text = f'Received unexpected config entry "{name}".'
            if expected:
                text += f" Expected: {expected.group(1)}"
            yield ConfigError(field=_join(path, name), message=text)
    elif err.reason == DagsterEvaluationErrorReason.FAILED_POST_PROCESSING and isinstance(
        data, SerializableErrorInfo
    ):
        # Dagster's message holds a whole traceback; its first line says what went wrong.
        yield ConfigError(field=path, message=_post_processing_message(data))
    else:
        yield ConfigError(field=path, message=message)


def _path(stack: EvaluationStackEntry) -> str:
    """``ops.sink.config.tags[1]``: names dotted, list indexes in brackets, map keys as names."""
    parts: list[str] = []
    for entry in stack.entries:
        if isinstance(entry, EvaluationStackPathEntry):
            parts.append(entry.field_name)
        elif isinstance(entry, EvaluationStackListItemEntry):
            if parts:
                parts[-1] += f"[{entry.list_index}]"
            else:
                parts.append(f"[{entry.list_index}]")
        elif isinstance(entry, (EvaluationStackMapKeyEntry, EvaluationStackMapValueEntry)):
            parts.append(str(entry.map_key))
    return ".".join(parts)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _strip_path(message: str, stack: EvaluationStackEntry) -> str:
    """Dagster's message without its ``at path root:ops:...`` (or ``at the root``): the
    error's field says where."""
    where = get_friendly_path_msg(stack)
    return message.replace(f" {where}", "", 1).strip()


def _post_processing_message(data: SerializableErrorInfo) -> str:
    cause = data
    while cause.cause is not None and not cause.message.strip():
        cause = cause.cause
    text = cause.message.strip().splitlines()[0] if cause.message.strip() else str(data)
    # "dagster._config.errors.PostProcessingError: You have attempted ..." -> "You have ..."
    return re.sub(r"^[\w.]+(Error|Exception): ", "", text)


# --- planned steps --------------------------------------------------------------------------


def planned_steps(job: JobDefinition, run_config: dict[str, Any]) -> list[str]:
    """The step keys a run of ``job`` with ``run_config`` would execute, in topological order
    (ties by key), each once: a dynamically mapped step as its base name (``double``, not
    ``double[?]`` or ``double[k]``), steps of nested graphs dotted (``outer.inner.double``).

    Raises ``dagster.DagsterInvalidConfigError`` for a config Dagster refuses: validate it
    first (``validate_run_config``)."""
    plan = create_execution_plan(job, run_config)
    seen: dict[str, None] = {}
    for step in plan.get_all_steps_in_topo_order():
        seen.setdefault(str(step.node_handle), None)
    return list(seen)
