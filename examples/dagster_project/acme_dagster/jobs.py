"""Op jobs: `etl`, `fanout` (a graph), `flaky`, `fails` and `slow`.

Every op is quick (well under 0.2 s) except `nap` in `slow`, which sleeps for as long as its
config says (60 s by default): it is there to be terminated.
"""

import time

import dagster as dg
from pydantic import Field

from .resources import TeardownMarker, WarehouseResource

# ------------------------------------------------------------------ etl
# extract -> transform -> load, with config, a resource, logs, stdout and output metadata.


class ExtractConfig(dg.Config):
    """Where the orders are read from."""

    source: str = Field(description="The source system to read from (required).")
    rows: int = Field(default=3, description="How many rows to read.")


class TransformConfig(dg.Config):
    """How rows are transformed."""

    factor: int = Field(default=10, description="What every row is multiplied by.")


@dg.op(description="Reads `rows` numbered rows from `source`.")
def extract(context: dg.OpExecutionContext, config: ExtractConfig) -> list[int]:
    context.log.info(f"extracting {config.rows} rows from {config.source}")
    rows = list(range(1, config.rows + 1))
    context.add_output_metadata({"source": config.source, "rows": len(rows)})
    return rows


@dg.op(description="Multiplies every row by `factor`.")
def transform(
    context: dg.OpExecutionContext, config: TransformConfig, rows: list[int]
) -> list[int]:
    print(f"transform: multiplying {len(rows)} rows by {config.factor}")  # plain stdout
    return [row * config.factor for row in rows]


@dg.op(description="Writes the rows to the warehouse.")
def load(context: dg.OpExecutionContext, warehouse: WarehouseResource, rows: list[int]) -> int:
    written = warehouse.write("orders", rows)
    context.log.info(f"loaded {written} rows into orders")
    context.add_output_metadata({"table": "orders", "written": written, "total": sum(rows)})
    return written


@dg.job(description="Extracts, transforms and loads orders.", tags={"team": "data-eng"})
def etl() -> None:
    load(transform(extract()))


# ------------------------------------------------------------------ fanout
# A graph-based job: dynamic outputs mapped and collected, a nested graph, and a fan-in.
# Step keys: split, square[n1], square[n2], square[n3], sum_squares, outer.seed,
# outer.increment, outer.inner.double, combine.


@dg.op(out=dg.DynamicOut(int), description="Emits 1, 2, 3 as dynamic outputs n1, n2, n3.")
def split():  # a generator of DynamicOutputs
    for n in (1, 2, 3):
        yield dg.DynamicOutput(n, mapping_key=f"n{n}")


@dg.op
def square(n: int) -> int:
    return n * n


@dg.op(description="Collects the squares: 1 + 4 + 9 = 14.")
def sum_squares(squares: list[int]) -> int:
    return sum(squares)


@dg.op
def seed() -> int:
    return 2


@dg.op
def increment(n: int) -> int:
    return n + 1


@dg.op
def double(n: int) -> int:
    return 2 * n


@dg.graph
def inner(n: int):
    return double(n)


@dg.graph
def outer():
    """(2 + 1) * 2 = 6."""
    return inner(increment(seed()))


@dg.op(
    ins={"parts": dg.In(list[int], description="One value per upstream op (fan-in).")},
    description="Adds its upstream values: 14 + 6 = 20.",
)
def combine(context: dg.OpExecutionContext, parts: list[int]) -> int:
    context.log.info(f"combining {parts}")
    return sum(parts)


@dg.graph
def fanout() -> None:
    combine([sum_squares(split().map(square).collect()), outer()])


fanout_job = fanout.to_job(
    name="fanout", description="Dynamic outputs, a nested graph and a fan-in."
)


# ------------------------------------------------------------------ flaky
# flaky_fetch fails on its first attempt and succeeds on its retry (RetryPolicy).


@dg.op(retry_policy=dg.RetryPolicy(max_retries=2))
def flaky_fetch(context: dg.OpExecutionContext) -> int:
    context.log.info(f"attempt {context.retry_number + 1}")
    if context.retry_number == 0:
        raise ConnectionError("the source dropped the connection (first attempt always fails)")
    return 42


@dg.op
def report(context: dg.OpExecutionContext, value: int) -> None:
    context.log.info(f"fetched {value}")


@dg.job(description="An op that fails once, then succeeds on its retry.")
def flaky() -> None:
    report(flaky_fetch())


# ------------------------------------------------------------------ fails
# prepare succeeds, explode raises ValueError (caused by a KeyError), never_runs never runs.


@dg.op
def prepare() -> dict[str, int]:
    return {"present": 1}


@dg.op
def explode(payload: dict[str, int]) -> int:
    try:
        return payload["missing"]
    except KeyError as exc:
        raise ValueError("payload has no 'missing' field") from exc


@dg.op
def never_runs(value: int) -> int:
    return value


@dg.job(description="Fails by design: explode raises, so never_runs never runs.")
def fails() -> None:
    never_runs(explode(prepare()))


# ------------------------------------------------------------------ slow
# nap sleeps for `seconds` (60 by default) in 0.1 s slices: a run to terminate. The
# teardown_marker resource records its teardown.


class NapConfig(dg.Config):
    """How long nap sleeps."""

    seconds: float = Field(default=60.0, description="How long to sleep, in seconds.")


@dg.op(description="Sleeps for `seconds`, logging every second.")
def nap(
    context: dg.OpExecutionContext, config: NapConfig, teardown_marker: TeardownMarker
) -> float:
    started = time.monotonic()
    deadline = started + config.seconds
    context.log.info(f"napping for {config.seconds} s")
    next_log = 1.0
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(0.1, remaining))
        if time.monotonic() - started >= next_log:
            context.log.info(f"still napping after {next_log:.0f} s")
            next_log += 1.0
    return time.monotonic() - started


@dg.job(description="Sleeps for a minute unless told otherwise: a run to terminate.")
def slow() -> None:
    nap()
