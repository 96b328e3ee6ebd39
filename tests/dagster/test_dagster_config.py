"""A Dagster job's run config in Tether (tether_sdk/dagster/config.py), on the real dagster:
the JSON Schema the control plane checks configs against, and Dagster's own validation,
must agree on what is valid and name the same fields; the schema carries defaults and
descriptions; the planned steps come in order. Also pins the Dagster internals it uses."""

import enum
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from jsonschema import Draft202012Validator
from pydantic import Field as PydanticField

from tether_api.configschema import fields
from tether_api.user_api import RUN_CONFIG_LOC
from tether_controlplane.services.runconfig import config_errors, describe
from tether_sdk.dagster.config import planned_steps, run_config_schema, validate_run_config


@pytest.fixture(autouse=True, scope="module")
def dagster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
        mp.setenv("TETHER_TEST_TABLE", "from_env")
        mp.setenv("TETHER_TEST_ROWS", "7")
        mp.delenv("TETHER_TEST_UNSET", raising=False)
        yield home


# --- the jobs -----------------------------------------------------------------------------


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class Window(dg.Config):
    """How far back to look."""

    days: int = 3


class EmitConfig(dg.Config):
    """What emit produces."""

    n: int = PydanticField(default=2, description="How many numbers")
    mode: Mode = Mode.FAST
    window: Window = Window()
    labels: list[str] = []
    note: str | None = None


class Warehouse(dg.ConfigurableResource):
    """A fake warehouse connection."""

    url: str
    pool: int = 5


@dg.resource(
    config_schema={
        "host": dg.Field(str, description="Cache host"),
        "port": dg.Field(int, default_value=6379, is_required=False),
    }
)
def cache(context: dg.InitResourceContext) -> str:
    return str(context.resource_config["host"])


SINK_SCHEMA = {
    "table": dg.Field(dg.StringSource, description="Target table"),
    "batch": dg.Field(int, default_value=100, description="Rows per batch"),
    "limit": dg.Field(dg.Noneable(int), default_value=None, is_required=False),
    "ratio": dg.Field(float, default_value=0.5, is_required=False),
    "src": dg.Selector({"url": str, "file": dg.Field(str, description="A local path")}),
    "store": dg.Field(
        dg.Selector(
            {
                "fs": {"base": dg.Field(str, default_value="/tmp/store")},
                "memory": dg.Field(dg.Permissive(), is_required=False),
            }
        ),
        default_value={"fs": {}},
    ),
    "opts": dg.Field(
        dg.Permissive({"retries": dg.Field(int, is_required=False)}), default_value={}
    ),
    "tags": [str],
    "weights": dg.Field(dg.Map(str, int), default_value={}),
    "level": dg.Field(
        dg.Enum("Level", [dg.EnumValue("LOW"), dg.EnumValue("HIGH")]), default_value="LOW"
    ),
}


@dg.op
def emit(config: EmitConfig, warehouse: Warehouse) -> int:
    return config.n


@dg.op(config_schema={"factor": dg.Field(int, default_value=2, description="Multiplier")})
def double(context: dg.OpExecutionContext, x: int) -> int:
    return x * int(context.op_config["factor"])


@dg.graph
def inner(x: int) -> Any:
    return double(x)


@dg.graph
def outer(x: int) -> Any:
    return inner(x)


@dg.op(config_schema=SINK_SCHEMA, required_resource_keys={"cache"})
def sink(context: dg.OpExecutionContext, x: int) -> None:
    pass


@dg.job(resource_defs={"warehouse": Warehouse.configure_at_launch(), "cache": cache})
def etl() -> None:
    sink(outer(emit()))


GOOD: dict[str, Any] = {
    "resources": {
        "warehouse": {"config": {"url": "postgres://db"}},
        "cache": {"config": {"host": "localhost"}},
    },
    "ops": {"sink": {"config": {"table": "t", "src": {"url": "u"}, "tags": ["a"]}}},
}


def with_sink(**config: Any) -> dict[str, Any]:
    sink_config = {**GOOD["ops"]["sink"]["config"], **config}
    return {**GOOD, "ops": {**GOOD["ops"], "sink": {"config": sink_config}}}


def with_op(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {**GOOD, "ops": {**GOOD["ops"], name: {"config": config}}}


FULL = {
    **GOOD,
    "ops": {
        "emit": {
            "config": {
                "n": {"env": "TETHER_TEST_ROWS"},
                "mode": "SLOW",
                "window": {"days": 9},
                "labels": ["x", "y"],
                "note": None,
            }
        },
        "outer": {"ops": {"inner": {"ops": {"double": {"config": {"factor": 5}}}}}},
        "sink": {
            "config": {
                "table": {"env": "TETHER_TEST_TABLE"},
                "batch": 10,
                "limit": None,
                "ratio": 1,  # an int for a Float
                "src": {"file": "/data/in.csv"},
                "store": {"fs": None},  # a selector's key without a value: its defaults
                "opts": {"retries": 2, "anything": {"else": True}},
                "tags": [],
                "weights": {"a": 1, "b": 2},
                "level": "HIGH",
            }
        },
    },
    # Accepted though not in the schema's properties (Tether runs jobs in process).
    "execution": {"config": {"in_process": {}}},
    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
}

# name -> (run config, the fields Dagster names, the fields the control plane names when
# they differ from Dagster's; None: valid)
CASES: dict[str, tuple[dict[str, Any], list[str] | None, list[str] | None]] = {
    "minimal": (GOOD, None, None),
    "everything": (FULL, None, None),
    "empty": (
        {},
        ["ops", "resources"],
        None,
    ),
    "missing required fields": (
        {
            "resources": {"warehouse": {"config": {}}, "cache": {"config": {"host": "h"}}},
            "ops": {"sink": {"config": {"src": {"url": "u"}}}},
        },
        ["ops.sink.config.table", "ops.sink.config.tags", "resources.warehouse.config.url"],
        None,
    ),
    "unknown fields": (
        with_op("emit", {"zzz": 1, "yyy": 2}),
        ["ops.emit.config.yyy", "ops.emit.config.zzz"],
        None,
    ),
    "list item of the wrong type": (with_sink(tags=["a", 1]), ["ops.sink.config.tags[1]"], None),
    "pythonic list item": (
        with_op("emit", {"labels": ["a", 2]}),
        ["ops.emit.config.labels[1]"],
        None,
    ),
    "enum value, not name": (with_op("emit", {"mode": "fast"}), ["ops.emit.config.mode"], None),
    "legacy enum": (with_sink(level="MEDIUM"), ["ops.sink.config.level"], None),
    "nested model": (
        with_op("emit", {"window": {"days": "three"}}),
        ["ops.emit.config.window.days"],
        None,
    ),
    "selector with two keys": (
        with_sink(src={"url": "u", "file": "f"}),
        ["ops.sink.config.src"],
        None,
    ),
    "selector with none": (with_sink(src={}), ["ops.sink.config.src"], None),
    "null for a required string": (with_sink(tags=None), ["ops.sink.config.tags"], None),
    "null for a Noneable": (with_sink(limit=None), None, None),
    "string for an int": (with_sink(batch="10"), ["ops.sink.config.batch"], None),
    "int for a float": (with_sink(ratio=2), None, None),
    "bool for an int": (with_sink(batch=True), ["ops.sink.config.batch"], None),
    "map value": (with_sink(weights={"a": "x"}), ["ops.sink.config.weights.a"], None),
    "permissive extra is fine": (with_sink(opts={"other": [1, 2]}), None, None),
    "permissive known field checked": (
        with_sink(opts={"retries": "x"}),
        ["ops.sink.config.opts.retries"],
        None,
    ),
    "env source with another key": (
        with_sink(table={"env": "TETHER_TEST_TABLE", "x": 1}),
        ["ops.sink.config.table"],
        ["ops.sink.config.table.x"],
    ),
    "nested graph": (
        {
            **GOOD,
            "ops": {
                **GOOD["ops"],
                "outer": {"ops": {"inner": {"ops": {"double": {"config": {"factor": "x"}}}}}},
            },
        },
        ["ops.outer.ops.inner.ops.double.config.factor"],
        None,
    ),
    "op of a graph named directly": (
        {**GOOD, "ops": {**GOOD["ops"], "double": {"config": {"factor": 1}}}},
        ["ops.double"],
        None,
    ),
    "resource config": (
        {
            **GOOD,
            "resources": {**GOOD["resources"], "cache": {"config": {"host": "h", "port": "x"}}},
        },
        ["resources.cache.config.port"],
        None,
    ),
    "ops not an object": ({**GOOD, "ops": [1]}, ["ops"], None),
}


def dotted(loc: list[str | int]) -> str:
    """A control plane error location as a dotted path, lists in brackets."""
    assert tuple(loc[: len(RUN_CONFIG_LOC)]) == RUN_CONFIG_LOC
    out = ""
    for part in loc[len(RUN_CONFIG_LOC) :]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return run_config_schema(etl)


def prop(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    node = schema
    for name in path:
        node = node["properties"][name]
    return node


# --- the schema and Dagster agree -----------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_schema_and_dagster_agree(schema: dict[str, Any], case: str) -> None:
    run_config, expected, expected_by_schema = CASES[case]
    processed, errors = validate_run_config(etl, run_config)
    json_valid = Draft202012Validator(schema).is_valid(run_config)
    assert (not errors) == json_valid == (expected is None), (errors, json_valid)
    assert (processed is not None) == (not errors)
    if expected is None:
        return
    assert sorted(e.field for e in errors) == expected
    assert all(e.message and "at path" not in e.message for e in errors), errors
    # The control plane's own check (at run creation) names the same fields, as 422 errors.
    found = config_errors(schema, run_config)
    assert sorted({dotted(e.loc) for e in found}) == (expected_by_schema or expected), found
    assert all(e.loc[: len(RUN_CONFIG_LOC)] == list(RUN_CONFIG_LOC) for e in found)


def test_error_messages_are_dagsters_without_the_path() -> None:
    _, errors = validate_run_config(etl, with_sink(tags=["a", 1], batch="x"))
    by_field = {e.field: e.message for e in errors}
    assert by_field["ops.sink.config.tags[1]"] == (
        'Invalid scalar. Value "1" of type "<class \'int\'>" is not valid for expected type '
        '"String".'
    )
    assert by_field["ops.sink.config.batch"].startswith('Invalid scalar. Value "x"')
    _, errors = validate_run_config(etl, with_op("emit", {"zzz": 1}))
    assert errors[0].field == "ops.emit.config.zzz"
    assert errors[0].message.startswith('Received unexpected config entry "zzz". Expected:')
    _, errors = validate_run_config(etl, {**GOOD, "ops": {"sink": {"config": {}}}})
    assert {e.field for e in errors} == {
        "ops.sink.config.table",
        "ops.sink.config.src",
        "ops.sink.config.tags",
    }
    assert all(e.message.startswith("Missing required config entry") for e in errors)


def test_control_plane_errors_for_a_bad_dagster_config(schema: dict[str, Any]) -> None:
    run_config = with_sink(tags=["a", 1], src={"url": "u", "file": "f"}, zzz=1)
    run_config["ops"]["emit"] = {"config": {"n": "many"}}
    found = config_errors(schema, run_config)
    assert [(e.loc, e.type) for e in found] == [
        ([*RUN_CONFIG_LOC, "ops", "emit", "config", "n"], "type"),
        ([*RUN_CONFIG_LOC, "ops", "sink", "config", "src"], "maxProperties"),
        ([*RUN_CONFIG_LOC, "ops", "sink", "config", "tags", 1], "type"),
        ([*RUN_CONFIG_LOC, "ops", "sink", "config", "zzz"], "additionalProperties"),
    ]
    # A Noneable's null branch is unwrapped to name what is wrong with the value.
    assert found[0].msg == "'many' is not of type 'integer' or 'object'"
    assert found[2].msg == "1 is not of type 'string'"
    line = describe("etl", found)
    assert line.startswith("invalid run config for job 'etl': run_config.ops.emit.config.n: ")
    _, dagster_errors = validate_run_config(etl, run_config)
    assert sorted(e.field for e in dagster_errors) == [
        "ops.emit.config.n",
        "ops.sink.config.src",
        "ops.sink.config.tags[1]",
        "ops.sink.config.zzz",
    ]


def test_what_only_dagster_refuses(schema: dict[str, Any]) -> None:
    """Known gaps, on purpose: the schema accepts, Dagster (code server, worker) refuses."""
    cases = {
        # execution and loggers are not in the schema
        "execution.config.bogus": {**GOOD, "execution": {"config": {"bogus": {}}}},
        # the variable is read where the config is processed
        "ops.sink.config.table": with_sink(table={"env": "TETHER_TEST_UNSET"}),
        # JSON Schema counts 1.0 as an integer; Dagster's Int does not
        "ops.sink.config.batch": with_sink(batch=1.0),
    }
    for field, run_config in cases.items():
        assert config_errors(schema, run_config) == []
        processed, errors = validate_run_config(etl, run_config)
        assert processed is None
        assert [e.field for e in errors] == [field]
    _, errors = validate_run_config(etl, with_sink(table={"env": "TETHER_TEST_UNSET"}))
    assert errors[0].message.startswith(
        'You have attempted to fetch the environment variable "TETHER_TEST_UNSET" which is not set'
    )


def test_processed_config_has_defaults_and_env_values() -> None:
    processed, errors = validate_run_config(etl, FULL)
    assert errors == []
    assert processed is not None
    ops = processed["ops"]
    assert ops["emit"]["config"] == {
        "n": 7,  # IntSource: read from the environment
        "mode": "slow",  # the enum's value, as the op sees it
        "window": {"days": 9},
        "labels": ["x", "y"],
        "note": None,
    }
    assert ops["sink"]["config"]["table"] == "from_env"
    assert ops["sink"]["config"]["store"] == {"fs": {"base": "/tmp/store"}}
    processed, _ = validate_run_config(etl, GOOD)
    assert processed is not None
    assert processed["ops"]["emit"]["config"]["mode"] == "fast"
    assert processed["ops"]["sink"]["config"]["batch"] == 100
    assert processed["ops"]["outer.inner.double"]["config"] == {"factor": 2}
    assert processed["resources"]["warehouse"]["config"] == {"url": "postgres://db", "pool": 5}


@pytest.mark.parametrize(
    "run_config",
    [[], "ops: {}", None, 3, {1: "x"}],
)
def test_not_an_object_is_an_error_at_the_root(run_config: Any) -> None:
    processed, errors = validate_run_config(etl, run_config)
    assert processed is None
    assert len(errors) == 1
    assert errors[0].field == ""
    assert errors[0].message


# --- the schema itself ----------------------------------------------------------------------


def test_schema_is_plain_draft_2020_12(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    text = json.dumps(schema, allow_nan=False)
    assert "$ref" not in text
    assert "$defs" not in text
    assert json.loads(text) == schema


def test_top_level_leaves_out_execution_and_loggers(schema: dict[str, Any]) -> None:
    assert set(schema["properties"]) == {"ops", "resources"}
    # They stay allowed (Dagster checks them); any other unknown key is refused at the top.
    assert schema["patternProperties"] == {"^(execution|loggers)$": {"type": "object"}}
    assert schema["additionalProperties"] is False
    found = config_errors(schema, {**GOOD, "opz": {}})
    assert [(e.loc, e.type) for e in found] == [([*RUN_CONFIG_LOC, "opz"], "additionalProperties")]
    assert found[0].msg == "unknown key; this job's config takes ops, resources"
    assert validate_run_config(etl, {**GOOD, "opz": {}})[0] is None  # as Dagster says
    assert sorted(schema["required"]) == ["ops", "resources"]
    # Below the top, objects are closed as in Dagster.
    assert prop(schema, "ops")["additionalProperties"] is False
    assert prop(schema, "ops", "sink", "config", "opts")["additionalProperties"] is True


def test_defaults_and_descriptions(schema: dict[str, Any]) -> None:
    sink_config = prop(schema, "ops", "sink", "config")
    assert sorted(sink_config["required"]) == ["src", "table", "tags"]
    assert sink_config["properties"]["batch"]["default"] == 100
    assert sink_config["properties"]["batch"]["description"] == "Rows per batch"
    assert sink_config["properties"]["batch"]["type"] == "integer"
    assert sink_config["properties"]["table"]["description"] == "Target table"
    assert sink_config["properties"]["limit"]["default"] is None
    assert sink_config["properties"]["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert sink_config["properties"]["level"] == {
        "type": "string",
        "enum": ["LOW", "HIGH"],
        "default": "LOW",
    }
    src = sink_config["properties"]["src"]
    assert src["minProperties"] == src["maxProperties"] == 1
    assert src["properties"]["file"]["description"] == "A local path"
    assert sink_config["properties"]["store"]["default"] == {"fs": {}}
    assert sink_config["properties"]["weights"]["additionalProperties"] == {"type": "integer"}
    assert sink_config["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}

    emit = prop(schema, "ops", "emit")
    assert emit["properties"]["config"]["description"] == "What emit produces."
    emit_config = emit["properties"]["config"]["properties"]
    assert emit_config["n"]["default"] == 2
    assert emit_config["n"]["description"] == "How many numbers"
    assert emit_config["mode"]["default"] == "FAST"  # the name, which is what Dagster takes
    assert emit_config["mode"]["anyOf"][0]["enum"] == ["FAST", "SLOW"]
    assert emit_config["window"]["default"] == {"days": 3}
    assert emit_config["window"]["description"] == "How far back to look."
    assert emit_config["labels"]["default"] == []

    double = prop(schema, "ops", "outer", "ops", "inner", "ops", "double", "config", "factor")
    assert double["default"] == 2
    assert double["description"] == "Multiplier"

    warehouse = prop(schema, "resources", "warehouse")
    assert warehouse["description"] == "A fake warehouse connection."
    assert warehouse["properties"]["config"]["required"] == ["url"]
    url = warehouse["properties"]["config"]["properties"]["url"]
    # StringSource: a string or {"env": VAR}, one schema (errors stay type errors)
    assert url["type"] == ["string", "object"]
    assert url["required"] == ["env"]
    assert url["additionalProperties"] is False
    cache_config = prop(schema, "resources", "cache", "config")
    assert cache_config["properties"]["host"]["description"] == "Cache host"
    assert cache_config["properties"]["port"]["default"] == 6379


def test_launchpad_fields_from_the_schema(schema: dict[str, Any]) -> None:
    shown = {f.path: f for f in fields(schema, depth=4)}
    assert not any(p.startswith(("execution", "loggers")) for p in shown)
    assert shown["ops"].required and shown["resources"].required
    assert shown["ops.sink"].required and not shown["ops.emit"].required
    batch = shown["ops.sink.config.batch"]
    assert (batch.type, batch.required, batch.default, batch.has_default) == (
        "integer",
        False,
        100,
        True,
    )
    assert batch.description == "Rows per batch"
    assert shown["ops.sink.config.table"].type == "string | object"
    assert shown["ops.sink.config.level"].type == "'LOW' | 'HIGH'"
    assert shown["ops.emit.config.mode"].type == "'FAST' | 'SLOW' | null"
    assert shown["ops.sink.config.tags"].type == "list[string]"
    assert shown["ops.sink.config.table"].required
    # The default depth (the launchpad's) still lists the ops and resources.
    assert {f.path for f in fields(schema)} >= {"ops", "ops.sink", "ops.emit", "resources"}


# --- other kinds of jobs --------------------------------------------------------------------


@dg.op
def plain() -> int:
    return 1


@dg.job
def no_config() -> None:
    plain()


def test_job_without_config() -> None:
    schema = run_config_schema(no_config)
    assert "required" not in schema
    assert config_errors(schema, {}) == []
    assert validate_run_config(no_config, {})[1] == []
    # An op without a config schema takes any config (Dagster's Any).
    assert Draft202012Validator(schema).is_valid({"ops": {"plain": {"config": [1, "x"]}}})
    assert validate_run_config(no_config, {"ops": {"plain": {"config": [1, "x"]}}})[1] == []
    assert planned_steps(no_config, {}) == ["plain"]


@dg.op(config_schema={"rows": int})
def sized(context: dg.OpExecutionContext) -> int:
    return int(context.op_config["rows"])


def _rows_to_ops(config: dict[str, Any]) -> dict[str, Any]:
    if config["rows"] < 0:
        raise ValueError("rows must not be negative")
    return {"ops": {"sized": {"config": {"rows": config["rows"]}}}}


@dg.job(
    config=dg.ConfigMapping(
        config_schema={"rows": dg.Field(int, default_value=10, description="How many rows")},
        config_fn=_rows_to_ops,
    )
)
def mapped() -> None:
    sized()


def test_job_with_a_config_mapping() -> None:
    schema = run_config_schema(mapped)
    # The mapping's own schema is the whole run config: nothing to leave out, nothing more.
    assert schema["properties"] == {
        "rows": {"type": "integer", "default": 10, "description": "How many rows"}
    }
    assert schema["additionalProperties"] is False
    checks: list[tuple[dict[str, Any], bool]] = [
        ({}, True),
        ({"rows": 3}, True),
        ({"rows": "x"}, False),
    ]
    for run_config, valid in checks:
        assert Draft202012Validator(schema).is_valid(run_config) is valid
        assert (validate_run_config(mapped, run_config)[1] == []) is valid
    assert [e.field for e in validate_run_config(mapped, {"rows": "x"})[1]] == ["rows"]
    # The mapping function failing is the config's fault: an error, not an exception.
    processed, errors = validate_run_config(mapped, {"rows": -1})
    assert processed is None
    assert [e.field for e in errors] == [""]
    assert "rows must not be negative" in errors[0].message
    assert planned_steps(mapped, {"rows": 3}) == ["sized"]


# --- planned steps --------------------------------------------------------------------------


@dg.op(out=dg.DynamicOut(int))
def fan_out() -> Iterator[dg.DynamicOutput[int]]:
    for i in range(3):
        yield dg.DynamicOutput(i, mapping_key=str(i))


@dg.op
def total(xs: list[int]) -> int:
    return sum(xs)


@dg.op
def report(n: int, m: int) -> None:
    pass


@dg.job
def dynamic() -> None:
    doubled = fan_out().map(double)
    report(total(doubled.collect()), plain())


def test_planned_steps_in_topological_order() -> None:
    assert planned_steps(etl, GOOD) == ["emit", "outer.inner.double", "sink"]


def test_planned_steps_of_a_dynamic_job() -> None:
    steps = planned_steps(dynamic, {})
    assert sorted(steps) == ["double", "fan_out", "plain", "report", "total"]
    assert steps.index("fan_out") < steps.index("double") < steps.index("total")
    assert steps.index("total") < steps.index("report")
    assert steps.index("plain") < steps.index("report")


def test_planned_steps_of_an_invalid_config_raise() -> None:
    with pytest.raises(dg.DagsterInvalidConfigError):
        planned_steps(etl, {})


# --- the internals the module relies on -----------------------------------------------------


def test_dagster_internals_still_there() -> None:
    """Fails on a Dagster upgrade that moves what tether_sdk/dagster/config.py imports."""
    from dagster._config import ConfigScalarKind, ConfigTypeKind
    from dagster._config.errors import DagsterEvaluationErrorReason, EvaluationError
    from dagster._config.stack import get_friendly_path_msg
    from dagster._core.execution.api import create_execution_plan

    assert {k.name for k in ConfigTypeKind} >= {
        "ANY",
        "SCALAR",
        "ENUM",
        "SELECTOR",
        "STRICT_SHAPE",
        "PERMISSIVE_SHAPE",
        "SCALAR_UNION",
        "MAP",
        "ARRAY",
        "NONEABLE",
    }
    assert {k.name for k in ConfigScalarKind} == {"INT", "STRING", "FLOAT", "BOOL"}
    assert "FAILED_POST_PROCESSING" in DagsterEvaluationErrorReason.__members__
    assert {"stack", "reason", "message", "error_data"} <= set(EvaluationError.__annotations__)
    assert callable(get_friendly_path_msg)
    plan = create_execution_plan(dynamic, {})
    assert "double[?]" in plan.get_all_step_deps()
