"""The step / lineage graph drawing: layout rules and SVG markup (pure functions, no server)."""

import re
import xml.etree.ElementTree as ET

from tether_controlplane.ui.graph import Node, layout, render_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def node_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "").split()]


def edge_paths(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]


DIAMOND = [
    Node("a", "a"),
    Node("b", "b", deps=("a",)),
    Node("c", "c", deps=("a",)),
    Node("d", "d", deps=("b", "c", "a")),
]


def test_columns_follow_the_longest_path_from_a_source() -> None:
    lay = layout(DIAMOND)
    assert lay.columns == [["a"], ["b", "c"], ["d"]]
    # Left to right: every edge goes from a box's right side to a box further right.
    for a, b in lay.edges:
        assert lay.boxes[a].x + lay.boxes[a].w < lay.boxes[b].x
    # The SVG fits exactly around the boxes.
    right = max(b.x + b.w for b in lay.boxes.values())
    bottom = max(b.y + b.h for b in lay.boxes.values())
    assert lay.width > right and lay.height > bottom


def test_the_same_input_gives_the_same_output() -> None:
    assert render_svg(DIAMOND, "Job") == render_svg(list(DIAMOND), "Job")
    assert layout(DIAMOND) == layout(DIAMOND)


def test_crossings_are_reduced() -> None:
    # Input order would draw a->y and b->x crossing; the barycenter sweep swaps x and y.
    nodes = [Node("a", "a"), Node("b", "b"), Node("x", "x", ("b",)), Node("y", "y", ("a",))]
    assert layout(nodes).columns == [["a", "b"], ["y", "x"]]
    # Three levels: the children follow their parents' order, and so do the grandchildren.
    nodes = [
        Node("p", "p"),
        Node("q", "q"),
        Node("q1", "q1", ("q",)),
        Node("p1", "p1", ("p",)),
        Node("q2", "q2", ("q1",)),
        Node("p2", "p2", ("p1",)),
    ]
    assert layout(nodes).columns == [["p", "q"], ["p1", "q1"], ["p2", "q2"]]


def test_labels_are_escaped_and_clamped() -> None:
    evil = '<script>alert("x")</script>' * 3
    svg = render_svg(
        [Node("s", evil, href='/runs/1?a=1&b="2"'), Node("t", "t", ("s",))], "<b>title</b>"
    )
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(svg)
    g = node_groups(root)[0]
    assert g.findtext(f"{SVG}title") == evil  # the full label is the tooltip
    shown = g.findtext(f"{SVG}text")
    assert shown is not None and shown.endswith("…") and len(shown) < len(evil)
    link = root.find(f".//{SVG}a")
    assert link is not None and link.get("href") == '/runs/1?a=1&b="2"'
    assert root.findtext(f"{SVG}title") == "<b>title</b>"


def test_svg_parses_with_one_node_group_per_node_and_one_path_per_edge() -> None:
    nodes = [*DIAMOND, Node("e", "e", ("d",), status="FAILURE")]
    root = parse(render_svg(nodes, "Job"))
    assert root.get("role") == "img"
    w, h = root.get("width"), root.get("height")
    assert root.get("viewBox") == f"0 0 {w} {h}"
    assert [g.get("data-id") for g in node_groups(root)] == ["a", "b", "c", "d", "e"]
    assert len(edge_paths(root)) == 6
    failed = node_groups(root)[-1].get("class", "").split()
    assert "status-failure" in failed
    desc = root.findtext(f"{SVG}desc")
    assert desc is not None and desc.startswith("a → b, a → c, b → d")
    title = root.find(f"{SVG}title")
    assert title is not None and root.get("aria-labelledby") == title.get("id")


def test_a_cycle_does_not_hang() -> None:
    nodes = [Node("a", "a", ("c",)), Node("b", "b", ("a",)), Node("c", "c", ("b",))]
    lay = layout(nodes)
    assert sorted(n for c in lay.columns for n in c) == ["a", "b", "c"]
    root = parse(render_svg([*nodes, Node("s", "self", ("s",))], "Loop"))
    assert len(node_groups(root)) == 4 and len(edge_paths(root)) == 4
    # A long chain does not hit the recursion limit.
    chain = [Node(f"n{i}", f"n{i}", (f"n{i - 1}",) if i else ()) for i in range(3000)]
    assert len(layout(chain).columns) == 3000


def test_unknown_deps_become_external_nodes() -> None:
    nodes = [
        Node("orders", "orders", ("raw.orders",), group="sales"),
        Node("report", "report", ("orders", "raw.fx"), group="finance"),
    ]
    lay = layout(nodes)
    assert lay.external == {"raw.orders", "raw.fx"}
    assert lay.columns[0] == ["raw.orders", "raw.fx"]
    root = parse(render_svg(nodes, "Lineage"))
    external = [g for g in node_groups(root) if "external" in g.get("class", "").split()]
    assert {g.get("data-id") for g in external} == {"raw.orders", "raw.fx"}
    texts = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "group"]
    assert texts == ["sales", "finance"]


def test_two_graphs_get_distinct_ids_and_an_empty_graph_renders() -> None:
    one, two = render_svg(DIAMOND, "Job one"), render_svg(DIAMOND, "Job two")
    ids = [set(re.findall(r'\sid="([^"]+)"', s)) for s in (one, two)]
    assert ids[0] and not ids[0] & ids[1]
    marker = parse(one).find(f".//{SVG}marker")
    assert marker is not None and f"url(#{marker.get('id')})" in one
    empty = parse(render_svg([], "Nothing"))
    assert empty.findtext(f"{SVG}desc") == "The graph is empty."
    assert not node_groups(empty)
