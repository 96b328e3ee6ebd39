"""Unknown run config keys: refused unless the config model says it takes them.

pydantic drops a key its model does not define (its default is ``extra="ignore"``), so a typo
(``fail_lod`` for ``fail_load``) would run with the default instead of being refused. Tether
refuses such keys, in the config model and in every model nested in it, unless that model sets
``extra`` itself: ``model_config = ConfigDict(extra="allow")`` keeps them
(``config.model_extra``), ``extra="ignore"`` drops them as pydantic does. The JSON schema of a
job's config says the same (``additionalProperties: false`` on each model that refuses them),
so the control plane, the launchpad and the worker give one answer.

A model that reshapes its input before its fields see it (a ``mode="before"`` or ``"wrap"``
model validator) takes any key, as its schema says: its raw keys need not be its fields. The
models nested in it still refuse theirs, in the check and in the schema alike.
"""

import collections.abc
import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AliasChoices, AliasPath, BaseModel, RootModel
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from tether_api.codeserver import ConfigError
from tether_api.configkeys import unknown_key_message

_MISSING: Any = object()  # no validated value to follow (validation failed, or no pairing)
_MAPPINGS = {dict, Mapping, collections.abc.MutableMapping, collections.OrderedDict}
_SEQUENCES = {
    list,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
    collections.abc.Iterable,
    collections.abc.Collection,
}
_REACHES_PAST = ("before", "wrap")


def refuses_unknown_keys(model: type[BaseModel]) -> bool:
    """Whether ``model`` refuses keys it does not define: yes unless it sets ``extra`` to
    ``"allow"`` or ``"ignore"`` itself, or reshapes its input in a before/wrap validator."""
    if issubclass(model, RootModel) or _reshapes_input(model):
        return False
    extra = model.model_config.get("extra")
    return extra is None or extra == "forbid"


def config_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema, with ``additionalProperties: false`` wherever a key it does not
    define is refused: what a job's snapshot carries to the control plane."""
    return model.model_json_schema(schema_generator=_RefusingUnknownKeys)


def unknown_keys(
    model: type[BaseModel], run_config: Mapping[str, Any], validated: BaseModel | None = None
) -> list[ConfigError]:
    """One error per key of ``run_config`` that a model refusing unknown keys does not
    define, at its full path (``source.bukcet``), in the order they appear.

    ``validated`` (the model ``run_config`` validated to, when it did) says which member of a
    union each nested value became; without it, only unambiguous types are followed."""
    found: list[ConfigError] = []
    _walk(run_config, model, _MISSING if validated is None else validated, [], found)
    return found


class _RefusingUnknownKeys(GenerateJsonSchema):
    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        if (
            refuses_unknown_keys(schema["cls"])
            and json_schema.get("type") == "object"
            and "additionalProperties" not in json_schema
        ):
            json_schema["additionalProperties"] = False
        return json_schema


def _reshapes_input(model: type[BaseModel]) -> bool:
    validators = model.__pydantic_decorators__.model_validators.values()
    return any(v.info.mode in _REACHES_PAST for v in validators)


def _walk(
    value: Any, annotation: Any, got: Any, path: list[str | int], found: list[ConfigError]
) -> None:
    if not isinstance(value, (Mapping, list, tuple)):
        return  # nothing nested to check
    annotation = _unwrap(annotation)
    if isinstance(got, BaseModel):
        _walk_model(value, type(got), got, path, found)
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _walk_model(value, annotation, _MISSING, path, found)
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(value, Mapping):
        if origin in _MAPPINGS and len(args) == 2:
            paired = _paired(value.values(), got)
            for (key, item), item_got in zip(value.items(), paired, strict=True):
                _walk(item, args[1], item_got, [*path, key], found)
        return
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]
        item_types = [args[0]] * len(value)
    elif origin is tuple:  # tuple[X, Y]: one type per place
        item_types = list(args) if len(args) == len(value) else []
    elif origin in _SEQUENCES and len(args) == 1:
        item_types = [args[0]] * len(value)
    else:
        return
    for index, (item, item_type, item_got) in enumerate(
        zip(value, item_types, _paired(value, got), strict=False)
    ):
        _walk(item, item_type, item_got, [*path, index], found)


def _walk_model(
    value: Any, model: type[BaseModel], got: Any, path: list[str | int], found: list[ConfigError]
) -> None:
    if issubclass(model, RootModel):
        root = got.root if isinstance(got, RootModel) else _MISSING
        _walk(value, model.model_fields["root"].annotation, root, path, found)
        return
    if not isinstance(value, Mapping):
        return
    shape = _shape(model)
    for key, item in value.items():
        if key not in shape.keys:
            if shape.refuses:
                where = ".".join(str(p) for p in [*path, key])
                message = unknown_key_message(path, shape.keys)
                found.append(ConfigError(field=where, message=message))
            continue
        name = shape.keys[key]
        # None: an AliasPath reaching inside the value, whose shape is not the field's.
        if name is not None and isinstance(item, (Mapping, list, tuple)):
            child = getattr(got, name, _MISSING) if isinstance(got, model) else _MISSING
            _walk(item, shape.annotations[name], child, [*path, key], found)


@dataclass(frozen=True)
class _Shape:
    keys: dict[str, str | None]  # each input key -> the field it fills
    refuses: bool
    annotations: dict[str, Any]  # field name -> its type


# Once per model, not once per item of a long list of them.
@functools.lru_cache(maxsize=512)
def _shape(model: type[BaseModel]) -> _Shape:
    fields = model.model_fields
    return _Shape(
        keys=_input_keys(model),
        refuses=refuses_unknown_keys(model),
        annotations={name: info.annotation for name, info in fields.items()},
    )


def _input_keys(model: type[BaseModel]) -> dict[str, str | None]:
    """The keys ``model`` reads from its input -> the field each one fills (None: one that an
    ``AliasPath`` reaches inside), as pydantic matches them: the aliases, and the names when
    the model validates by name or a field has no alias."""
    config = model.model_config
    by_alias = config.get("validate_by_alias", True)
    by_name = bool(config.get("validate_by_name") or config.get("populate_by_name"))
    keys: dict[str, str | None] = {}
    for name, info in model.model_fields.items():
        aliases = _aliases(info)
        if by_alias:
            keys.update((alias, name if whole else None) for alias, whole in aliases)
        if by_name or not by_alias or not aliases:
            keys[name] = name
    return keys


def _aliases(info: FieldInfo) -> list[tuple[str, bool]]:
    """A field's input keys other than its name, each with whether it holds the whole value."""
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    if alias is None:
        return []
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    found: list[tuple[str, bool]] = []
    for choice in choices:
        if isinstance(choice, str):
            found.append((choice, True))
        elif isinstance(choice, AliasPath) and choice.path and isinstance(choice.path[0], str):
            found.append((choice.path[0], len(choice.path) == 1))
    return found


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` -> X, ``X | None`` -> X; other unions stay as they are."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _paired(items: Any, got: Any) -> list[Any]:
    """The validated values beside the input's, when they still line up one to one."""
    values = list(got.values()) if isinstance(got, Mapping) else got
    if isinstance(values, (list, tuple)) and len(values) == len(items):
        return list(values)
    return [_MISSING] * len(items)
