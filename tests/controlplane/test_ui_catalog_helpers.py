"""The asset and backfill pages' pure helpers: the metadata chart's SVG, partitions in words,
the lineage graph's cut, and the two forms' checks before the API is asked (no server)."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from tether_controlplane.ui.assets import (
    LINEAGE_MAX_NODES,
    MaterializeForm,
    asset_href,
    lineage_graph,
    partitions_text,
)
from tether_controlplane.ui.backfills import LaunchForm
from tether_controlplane.ui.sparkline import Point, chart_svg, number_text

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_a_chart_places_points_by_time_and_says_its_range_in_words() -> None:
    points = [
        Point(T0, 10, note="partition a", href="/d/x/runs/1"),
        Point(T0 + timedelta(hours=1), 30),
        Point(T0 + timedelta(hours=3), 20.5),
    ]
    root = ET.fromstring(chart_svg(points, "rows <over> time"))
    assert root.find(f"{SVG}title").text == "rows <over> time"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "3 values from 10 to 30; latest 20.5."  # type: ignore[union-attr]
    circles = list(root.iter(f"{SVG}circle"))
    xs = [float(c.get("cx", "0")) for c in circles]
    # By time: the gap of two hours is twice that of one.
    assert xs[2] - xs[1] == pytest.approx(2 * (xs[1] - xs[0]), abs=0.2)  # rounded to 0.1
    ys = [float(c.get("cy", "0")) for c in circles]
    assert ys[1] < ys[2] < ys[0]  # higher values higher up
    tips = [c.find(f"{SVG}title").text for c in circles]  # type: ignore[union-attr]
    assert tips[0] == "2024-01-01 00:00:00 UTC: 10 (partition a)"
    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/d/x/runs/1"]


def test_a_chart_of_one_value_a_flat_series_or_none_still_draws() -> None:
    one = ET.fromstring(chart_svg([Point(T0, 5)], "x"))
    assert len(list(one.iter(f"{SVG}circle"))) == 1
    assert not list(one.iter(f"{SVG}polyline"))
    flat = ET.fromstring(chart_svg([Point(T0, 5), Point(T0, 5)], "x"))
    ys = {c.get("cy") for c in flat.iter(f"{SVG}circle")}
    assert len(ys) == 1  # the middle, not an edge
    empty = ET.fromstring(chart_svg([Point(T0, float("nan"))], "x"))
    assert "(no values)" in "".join(empty.itertext())


def test_numbers_read_as_people_write_them() -> None:
    assert number_text(1234) == "1,234"
    assert number_text(2.0) == "2"
    assert number_text(0.123456) == "0.1235"
    assert number_text(float("inf")) == "inf"


def test_partitions_in_words() -> None:
    daily = {"kind": "time_window", "cron": "0 0 * * *", "start": "2024-01-01", "timezone": "UTC"}
    assert partitions_text(daily) == "daily from 2024-01-01 (UTC)"
    odd = {**daily, "cron": "*/5 * * * *"}
    assert partitions_text(odd) == "cron */5 * * * * from 2024-01-01 (UTC)"
    static = {"kind": "static", "keys": ["a", "b", "c", "d", "e", "f"]}
    assert partitions_text(static) == "static: a, b, c, d, e, …"
    multi = {"kind": "multi", "dimensions": [{"name": "date", **daily}, {"name": "r", **static}]}
    assert partitions_text(multi) == "multi: date (daily from 2024-01-01 (UTC)), r (static)"
    assert partitions_text(None) == "not partitioned"


def test_asset_links_keep_a_key_path_as_a_path() -> None:
    assert asset_href("prod", "raw/orders table") == "/d/prod/assets/raw/orders%20table"


def _lineage(key: str, others: int) -> dict[str, object]:
    keys = [f"up{i:03}" for i in range(others)]
    nodes = [{"key": k, "declared": True} for k in [key, *keys, "gone"]]
    edges = [{"upstream": k, "downstream": key} for k in keys]
    edges += [{"upstream": keys[0], "downstream": keys[1]}]
    edges += [{"upstream": key, "downstream": "gone"}]
    nodes[-1]["declared"] = False
    return {
        "key": key,
        "deps": keys,
        "downstream": ["gone"],
        "lineage": {"nodes": nodes, "edges": edges},
    }


def test_the_lineage_graph_marks_the_asset_and_links_the_others() -> None:
    svg, cut = lineage_graph("prod", _lineage("orders", 2))
    assert not cut
    root = ET.fromstring(str(svg))
    groups = {g.get("data-id"): g for g in root.iter(f"{SVG}g") if g.get("data-id")}
    assert "status-this-asset" in (groups["orders"].get("class") or "")
    links = {a.get("href") for a in root.iter(f"{SVG}a")}
    # The others link to their pages; the asset itself and an undeclared one do not.
    assert links == {"/d/prod/assets/up000", "/d/prod/assets/up001"}


def test_a_large_lineage_is_cut_to_the_direct_neighbours() -> None:
    asset = _lineage("orders", LINEAGE_MAX_NODES + 5)
    svg, cut = lineage_graph("prod", asset)
    assert cut
    root = ET.fromstring(str(svg))
    edges = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    # Only the edges that touch the asset: up000 -> up001 is left out.
    assert len(edges) == LINEAGE_MAX_NODES + 5 + 1


def test_the_materialize_form_says_what_is_missing_before_asking() -> None:
    with pytest.raises(ValueError, match="Select at least one asset"):
        MaterializeForm().body()
    with pytest.raises(ValueError, match="not both"):
        MaterializeForm(assets=["a"], partition="p", first="x").body()
    with pytest.raises(ValueError, match="fill in To"):
        MaterializeForm(assets=["a"], first="x").body()
    assert MaterializeForm(assets=["a"], partition=" p ").body() == {
        "assets": ["a"],
        "partition": "p",
    }
    assert MaterializeForm(assets=["a", "b"], first="x", last="y").body() == {
        "assets": ["a", "b"],
        "partition_range": ["x", "y"],
    }


def test_the_launch_form_becomes_the_api_body() -> None:
    form = LaunchForm(
        job="lake/daily",
        mode="range",
        first="2024-01-01",
        last="2024-01-03",
        max_in_flight="3",
        runs_per_minute="1.5",
        config='fail_on: ["2024-01-02"]',
        tags="team=data",
    )
    assert form.body() == {
        "code_location": "lake",
        "job": "daily",
        "partition_range": ["2024-01-01", "2024-01-03"],
        "max_in_flight": 3,
        "runs_per_minute": 1.5,
        "run_config": {"fail_on": ["2024-01-02"]},
        "tags": {"team": "data"},
    }
    listed = LaunchForm(target="assets", assets="a\nb, c", mode="list", keys="k1\nk2")
    assert listed.body() == {
        "assets": ["a", "b", "c"],
        "partitions": ["k1", "k2"],
        "run_config": {},
        "tags": {},
    }
    # "Only the missing ones" of every partition: no range needed.
    missing = LaunchForm(job="lake/daily", mode="range", only="missing").body()
    assert "partition_range" not in missing and missing["only"] == "missing"
    assert LaunchForm(job="lake/daily", mode="all").body()["all_partitions"] is True


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (LaunchForm(), "Job: choose a partitioned job"),
        (LaunchForm(target="assets"), "Assets: name at least one"),
        (LaunchForm(job="l/j", first="a"), "Range: fill in both From and To"),
        (LaunchForm(job="l/j", mode="list"), "Partitions: list at least one"),
        (LaunchForm(job="l/j", mode="all", max_in_flight="two"), "Max in flight: 'two' is not"),
        (LaunchForm(job="l/j", mode="all", config="[1]"), "Run config: the run config must"),
        (LaunchForm(job="l/j", mode="all", tags="oops"), "Tags: tag 'oops' is not KEY=VALUE"),
    ],
)
def test_the_launch_form_names_the_field_to_fix(form: LaunchForm, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        form.body()
