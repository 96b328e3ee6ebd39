"""Declaring definitions: what is accepted, the errors for what is not, and the snapshot."""

import pytest
from pydantic import BaseModel

from tether_sdk import (
    DefinitionError,
    Definitions,
    StepContext,
    asset,
    asset_job,
    job,
    schedule,
    step,
)
from tether_sdk.cron import cron_error
from tether_sdk.examples import quickstart


class Cfg(BaseModel):
    source: str
    rows: int = 10


@step
def a() -> int:
    return 1


@step
def b(a: int) -> int:
    return a + 1


@step
def c(ctx: StepContext, a: int) -> int:
    return a + 2


@step
def d(b: int, c: int) -> int:
    return b + c


def test_step_parameters_are_classified() -> None:
    @step(name="custom", description="explicit")
    def f(context: StepContext, config: Cfg, a: int, b: int) -> None: ...

    assert f.name == "custom"
    assert f.description == "explicit"
    assert f.context_param == "context"
    assert f.takes_config
    assert f.deps == ("a", "b")
    assert not f.is_asset


def test_docstring_is_the_default_description() -> None:
    @step
    def documented() -> None:
        """Does things."""

    assert documented.description == "Does things."


def test_execution_order_is_topological_and_stable() -> None:
    # Declared in reverse: dependencies decide, declaration order breaks ties (b before c).
    assert job("j", steps=[d, c, b, a]).step_names == ["a", "c", "b", "d"]
    assert job("j", steps=[a, b, c, d]).step_names == ["a", "b", "c", "d"]


def test_unknown_dependency_names_the_step_and_the_fix() -> None:
    with pytest.raises(DefinitionError) as err:
        job("j", steps=[b])
    message = str(err.value)
    assert "step 'b'" in message and "parameter 'a'" in message and "job 'j'" in message
    assert "Add the 'a' step to the job" in message


def test_cycle_is_reported_as_a_path() -> None:
    @step(name="x")
    def x(y: int) -> int:
        return y

    @step(name="y")
    def y(x: int) -> int:
        return x

    with pytest.raises(DefinitionError, match=r"dependency cycle: x -> y -> x"):
        job("j", steps=[x, y])


def test_duplicate_names() -> None:
    @step(name="a")
    def other_a() -> int:
        return 2

    with pytest.raises(DefinitionError, match="two steps named 'a'"):
        job("j", steps=[a, other_a])
    with pytest.raises(DefinitionError, match="lists step 'a' twice"):
        job("j", steps=[a, a])
    j1, j2 = job("same", steps=[a]), job("same", steps=[a])
    with pytest.raises(DefinitionError, match="two jobs are named 'same'"):
        Definitions(jobs=[j1, j2])


def test_config_parameter_needs_a_config_model() -> None:
    @step
    def needs_config(config: Cfg) -> None: ...

    with pytest.raises(DefinitionError, match="pass config=YourModel to the job"):
        job("j", steps=[needs_config])
    assert job("j", steps=[needs_config], config=Cfg).config is Cfg


@pytest.mark.parametrize("bad", ["", "has space", "-dash-first", "colon:name", "x" * 64])
def test_invalid_names(bad: str) -> None:
    with pytest.raises(DefinitionError, match="invalid job name"):
        job(bad, steps=[a])


def test_undecorated_function_is_explained() -> None:
    def plain() -> None: ...

    with pytest.raises(DefinitionError, match="did you forget @step"):
        job("j", steps=[plain])  # type: ignore[list-item]


def test_var_args_are_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"no \*args, \*\*kwargs"):

        @step
        def f(*args: int) -> None: ...


@pytest.mark.parametrize(
    ("cron", "fragment"),
    [
        ("0 3 * *", "has 4 field(s); expected 5"),
        ("0 3 * * * *", "has 6 field(s)"),
        ("60 3 * * *", "minute field '60': 60 is out of range 0-59"),
        ("0 24 * * *", "hour field '24'"),
        ("0 3 0 * *", "day of month field '0'"),
        ("0 3 * 13 *", "month field '13'"),
        ("0 3 * * 8", "day of week field '8'"),
        ("*/0 * * * *", "step '0' must be a positive integer"),
        ("5-1 * * * *", "goes backwards"),
        ("a * * * *", "'a' is not a number"),
    ],
)
def test_bad_cron_is_rejected(cron: str, fragment: str) -> None:
    problem = cron_error(cron)
    assert problem is not None and fragment in problem
    with pytest.raises(DefinitionError, match="schedule 's'"):
        schedule("s", cron=cron, job=job("j", steps=[a]))


@pytest.mark.parametrize(
    "cron", ["0 3 * * *", "*/15 0-6,22 1,15 JAN-mar mon-FRI", "0 0 * * 7", "59 23 31 12 0"]
)
def test_good_cron_is_accepted(cron: str) -> None:
    assert cron_error(cron) is None


def test_schedule_run_config_is_checked_against_the_job() -> None:
    j = job("j", steps=[a], config=Cfg)
    with pytest.raises(DefinitionError, match=r"schedule 's'.*source: Field required"):
        schedule("s", cron="0 3 * * *", job=j, run_config={"rows": 1})


def test_schedule_job_must_be_in_definitions() -> None:
    j = job("j", steps=[a])
    s = schedule("s", cron="0 3 * * *", job=j)
    with pytest.raises(DefinitionError, match="add it to Definitions"):
        Definitions(schedules=[s])


def test_assets_and_asset_jobs() -> None:
    @asset
    def raw() -> list[int]:
        return [1]

    @asset(group="g", name="total")
    def total_fn(raw: list[int]) -> int:
        return sum(raw)

    assert total_fn.asset_key == "total" and total_fn.group == "g" and total_fn.deps == ("raw",)
    with pytest.raises(DefinitionError, match="is a @step, not an @asset"):
        asset_job("j", assets=[a])
    with pytest.raises(DefinitionError, match="names no step of the job"):
        asset_job("j", assets=[total_fn])
    with pytest.raises(DefinitionError, match="asset 'total' depends on 'raw'"):
        Definitions(assets=[total_fn])
    # Assets of an asset job count as declared even when not listed in assets=.
    defs = Definitions(jobs=[asset_job("j", assets=[raw, total_fn])])
    assert list(defs.assets) == ["raw", "total"]


def test_quickstart_snapshot() -> None:
    snap = quickstart.defs.snapshot()
    etl = snap.job("etl")
    assert etl is not None
    assert [s.name for s in etl.steps] == ["extract", "transform", "load", "report"]
    assert etl.steps[2].deps == ["transform"]
    assert etl.tags == {"team": "data"}
    assert etl.config_schema is not None
    assert etl.config_schema["required"] == ["source"]
    assert set(etl.config_schema["properties"]) == {"source", "rows", "fail", "sleep_seconds"}
    refresh = snap.job("refresh_sales")
    assert refresh is not None and refresh.config_schema is None
    assert [s.asset_key for s in refresh.steps] == ["raw_orders", "order_totals", "top_region"]
    assert {a.key: (a.deps, a.group) for a in snap.assets} == {
        "raw_orders": ([], "default"),
        "order_totals": (["raw_orders"], "sales"),
        "top_region": (["order_totals"], "sales"),
    }
    (nightly,) = snap.schedules
    assert (nightly.name, nightly.cron, nightly.job) == ("nightly_etl", "0 3 * * *", "etl")
    assert nightly.run_config == {"source": "s3://example/orders.csv"}


def test_generator_steps_and_reserved_names_are_refused() -> None:
    import pytest

    from tether_sdk import DefinitionError, Definitions, job, step

    with pytest.raises(DefinitionError, match="is a generator"):

        @step
        def rows():  # type: ignore[no-untyped-def]
            yield 1

    with pytest.raises(DefinitionError, match="cannot be named 'config'"):

        @step
        def config() -> int:
            return 1

    @step
    def one() -> int:
        return 1

    with pytest.raises(DefinitionError, match=r"takes a list: write jobs=\["):
        Definitions(jobs=job("j", steps=[one]))  # type: ignore[arg-type]


def test_unknown_timezone_is_refused() -> None:
    import pytest

    from tether_sdk import DefinitionError, job, schedule, step

    @step
    def one() -> int:
        return 1

    with pytest.raises(DefinitionError, match="unknown timezone 'Mars/Olympus'"):
        schedule("s", cron="0 * * * *", job=job("j", steps=[one]), timezone="Mars/Olympus")
