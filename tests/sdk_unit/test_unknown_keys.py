"""Unknown run config keys: refused by default at every depth, with their full path and the keys
that are allowed; taken on purpose by a model that sets ``extra``; and the JSON schema the
control plane checks says exactly the same."""

from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from tether_controlplane.services.runconfig import config_errors
from tether_sdk import DefinitionError, Definitions, execute_job, job, schedule, step
from tether_sdk.config import describe_errors, validate_config
from tether_sdk.unknown_keys import config_json_schema

from .conftest import CodeServerProcess


class Weather(BaseModel):
    city: str
    fail_load: bool = False


class Bucket(BaseModel):
    bucket: str
    prefix: str = ""


class Tagged(BaseModel):
    """Keys it does not define are kept, on purpose."""

    model_config = ConfigDict(extra="allow")
    owner: str = "data"
    bucket: Bucket | None = None  # still a model of its own: it refuses unknown keys


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")
    level: int = 0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depth: int = 1


class Pipeline(BaseModel):
    name: str
    source: Bucket | None = None
    mirrors: list[Bucket] = Field(default_factory=list)
    by_region: dict[str, Bucket] = Field(default_factory=dict)
    pair: tuple[Bucket, Bucket] | None = None
    tagged: Tagged = Field(default_factory=Tagged)
    lenient: Lenient = Field(default_factory=Lenient)
    strict: Strict = Field(default_factory=Strict)


@step
def fetch(config: Weather) -> str:
    return config.city


weather = job("weather", steps=[fetch], config=Weather)


def _errors(model: type[BaseModel], run_config: dict[str, Any]) -> list[tuple[str, str]]:
    config, errors = validate_config(model, run_config)
    assert (config is None) == bool(errors)
    return [(e.field, e.message) for e in errors]


def test_an_unknown_key_is_refused_naming_it_and_the_keys_allowed() -> None:
    assert _errors(Weather, {"city": "Oslo", "fail_lod": True}) == [
        ("fail_lod", "unknown key; this job's config takes city, fail_load")
    ]
    # What execute_job (and so the run worker) says, before any step runs.
    with pytest.raises(ValueError) as raised:
        execute_job(weather, {"city": "Oslo", "fail_lod": True})
    assert str(raised.value) == (
        "invalid run config for job 'weather': "
        "fail_lod: unknown key; this job's config takes city, fail_load"
    )
    assert execute_job(weather, {"city": "Oslo"}).success


def test_a_typo_is_shown_beside_the_field_it_left_out() -> None:
    _, errors = validate_config(Weather, {"ctiy": "Oslo"})
    assert describe_errors("weather", errors) == (
        "invalid run config for job 'weather': city: Field required; "
        "ctiy: unknown key; this job's config takes city, fail_load"
    )


def test_nested_unknown_keys_are_refused_at_their_full_path() -> None:
    config = {
        "name": "n",
        "source": {"bucket": "b", "bukcet": "typo"},
        "mirrors": [{"bucket": "m1"}, {"bucket": "m2", "region": "eu"}],
        "by_region": {"eu": {"bucket": "e", "acl": "private"}},
        "pair": [{"bucket": "p"}, {"bucket": "q", "x": 1}],
        "tagged": {"anything": 1, "bucket": {"bucket": "t", "nope": 1}},
    }
    takes = "takes bucket, prefix"
    assert _errors(Pipeline, config) == [
        ("source.bukcet", f"unknown key; source {takes}"),
        ("mirrors.1.region", f"unknown key; mirrors.1 {takes}"),
        ("by_region.eu.acl", f"unknown key; by_region.eu {takes}"),
        ("pair.1.x", f"unknown key; pair.1 {takes}"),
        # Tagged takes extra keys, the model nested in it does not.
        ("tagged.bucket.nope", f"unknown key; tagged.bucket {takes}"),
    ]
    # Found even when something else is wrong too (no validated config to follow).
    assert _errors(Pipeline, {**config, "name": 5})[:2] == [
        ("name", "Input should be a valid string"),
        ("source.bukcet", f"unknown key; source {takes}"),
    ]


def test_a_model_takes_extra_keys_on_purpose_by_setting_extra() -> None:
    config, errors = validate_config(
        Pipeline, {"name": "n", "tagged": {"team": "x"}, "lenient": {"whatever": 1}}
    )
    assert errors == [] and isinstance(config, Pipeline)
    assert config.tagged.model_extra == {"team": "x"}  # allow: kept
    assert "whatever" not in config.lenient.model_dump()  # ignore: dropped, as pydantic does
    # A job whose whole config takes extra keys.
    config, errors = validate_config(Tagged, {"region": "eu"})
    assert errors == [] and isinstance(config, Tagged) and config.model_extra == {"region": "eu"}


def test_a_model_that_forbids_extra_keys_itself_says_it_once_the_same_way() -> None:
    assert _errors(Pipeline, {"name": "n", "strict": {"depth": 2, "width": 3}}) == [
        ("strict.width", "unknown key; strict takes depth")
    ]


def test_aliases_unions_and_reshaping_validators() -> None:
    class Aliased(BaseModel):
        table: str = Field(alias="tableName")
        mode: str = Field("append", validation_alias=AliasChoices("mode", "writeMode"))

    assert _errors(Aliased, {"tableName": "t", "writeMode": "x"}) == []
    # The field's name is not a key when it has an alias (pydantic would ignore it).
    assert _errors(Aliased, {"tableName": "t", "table": "u"}) == [
        ("table", "unknown key; this job's config takes mode, tableName, writeMode")
    ]

    class Csv(BaseModel):
        kind: Literal["csv"]
        delimiter: str = ","

    class Parquet(BaseModel):
        kind: Literal["parquet"]
        compression: str = "snappy"

    class Export(BaseModel):
        format: Csv | Parquet

    # The member the value became says which keys it takes.
    assert _errors(Export, {"format": {"kind": "parquet", "delimiter": ";"}}) == [
        ("format.delimiter", "unknown key; format takes compression, kind")
    ]

    class Renamed(BaseModel):
        new_name: str
        inner: Bucket | None = None

        @model_validator(mode="before")
        @classmethod
        def _rename(cls, data: Any) -> Any:
            if isinstance(data, dict) and "old_name" in data:
                data = {**data, "new_name": data["old_name"]}
                del data["old_name"]
            return data

    # Its raw keys need not be its fields: it takes any key, and its schema says so; the
    # model nested in it still refuses its own, in the check and in the schema alike.
    assert _errors(Renamed, {"old_name": "x"}) == []
    assert "additionalProperties" not in config_json_schema(Renamed)
    nested = {"old_name": "x", "inner": {"bucket": "b", "zz": 1}}
    assert _errors(Renamed, nested) == [("inner.zz", "unknown key; inner takes bucket, prefix")]
    checked = config_errors(config_json_schema(Renamed), nested)
    assert [(e.loc[2:], e.msg) for e in checked if e.type == "additionalProperties"] == [
        (["inner", "zz"], "unknown key; inner takes bucket, prefix")
    ]


def test_the_schema_says_where_unknown_keys_are_refused() -> None:
    schema = config_json_schema(Pipeline)
    defs = schema["$defs"]
    assert schema["additionalProperties"] is False
    assert defs["Bucket"]["additionalProperties"] is False
    assert defs["Strict"]["additionalProperties"] is False
    assert defs["Tagged"]["additionalProperties"] is True
    assert "additionalProperties" not in defs["Lenient"]
    # The snapshot a code location reports carries that schema.
    snapshot = Definitions(jobs=[weather]).snapshot().job("weather")
    assert snapshot is not None and snapshot.config_schema == config_json_schema(Weather)
    assert snapshot.config_schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "run_config",
    [
        {"name": "n"},
        {"name": "n", "extra": 1},
        {"name": "n", "source": {"bucket": "b", "bukcet": "typo"}},
        {"name": "n", "mirrors": [{"bucket": "m"}, {"bucket": "m", "region": "eu"}]},
        {"name": "n", "by_region": {"eu": {"bucket": "e", "acl": "x"}}},
        {"name": "n", "tagged": {"free": 1, "bucket": {"bucket": "t", "nope": 1}}},
        {"name": "n", "lenient": {"whatever": 1}},
        {"name": "n", "strict": {"width": 3}},
    ],
)
def test_the_control_plane_and_the_worker_agree(run_config: dict[str, Any]) -> None:
    """The control plane checks the snapshot's JSON schema, the worker the model itself: the
    same keys are refused, with the same message."""
    _, sdk = validate_config(Pipeline, run_config)
    control_plane = config_errors(config_json_schema(Pipeline), run_config)
    assert [(e.field, e.message) for e in sdk] == [
        (".".join(str(p) for p in e.loc[2:]), e.msg) for e in control_plane
    ]


def test_a_schedule_with_an_unknown_key_fails_at_import() -> None:
    with pytest.raises(DefinitionError, match="fail_lod: unknown key; this job's config takes"):
        schedule("hourly", cron="0 * * * *", job=weather, run_config={"city": "x", "fail_lod": 1})


def test_the_code_server_refuses_an_unknown_key(code_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "weather_defs.py"
    path.write_text(
        "from pydantic import BaseModel\n"
        "from tether_sdk import Definitions, job, step\n"
        "class Weather(BaseModel):\n    city: str\n    fail_load: bool = False\n"
        "@step\ndef fetch(config: Weather) -> None: ...\n"
        "defs = Definitions(jobs=[job('weather', steps=[fetch], config=Weather)])\n"
    )
    server: CodeServerProcess = code_server("--python-file", str(path))
    body = {"job": "weather", "run_config": {"city": "Oslo", "fail_lod": True}}
    answer = server.client.post("/validate", json=body).json()
    assert answer["valid"] is False
    assert answer["errors"] == [
        {"field": "fail_lod", "message": "unknown key; this job's config takes city, fail_load"}
    ]
    snapshot = server.client.get("/snapshot").json()["snapshot"]
    assert snapshot["jobs"][0]["config_schema"]["additionalProperties"] is False
