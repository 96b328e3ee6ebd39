"""Left-to-right drawings of small DAGs as inline SVG: a job's step graph, an asset lineage graph.

Pure Python, no dependencies. ``layout`` places the nodes (column = longest path from a source,
order within a column by a few barycenter sweeps); ``render_svg`` turns that into self-contained
markup for a server-rendered page. Colours come from CSS classes (``node``, ``status-<outcome>``,
``group-<n>``, ``external``, ``edge``); the embedded ``<style>`` holds zero-specificity defaults
(``:where``), so any rule in the page's stylesheet wins. An empty graph renders a small SVG that
says "(empty)" rather than a ``<p>``, so callers always get one kind of markup.
"""

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

CHAR_PX, SMALL_CHAR_PX = 7.2, 6.1  # estimated advance per character at 13px / 11px
MAX_CHARS = 32  # longer labels are clamped with an ellipsis; the full text is in the tooltip
PAD_X, MIN_W = 12, 60
H_ONE, H_TWO = 32, 46  # box height: label only / label and group line (when any node has a group)
GAP_X, GAP_Y, MARGIN = 56, 16, 16
SWEEPS = 4  # barycenter sweeps, alternately left to right and right to left
GROUP_COLOURS = 6

_STYLE = """
:where(.tether-graph){font:13px system-ui,sans-serif}
:where(.tether-graph .node rect){fill:#f6f8fa;stroke:#57606a;stroke-width:1}
:where(.tether-graph .node text){fill:#1f2328}
:where(.tether-graph .node text.group){fill:#424a53;font-size:11px}
:where(.tether-graph .group-1 rect){fill:#eef4fb}:where(.tether-graph .group-2 rect){fill:#f4effb}
:where(.tether-graph .group-3 rect){fill:#fbf4e8}:where(.tether-graph .group-4 rect){fill:#eaf6f7}
:where(.tether-graph .group-5 rect){fill:#fbeef3}
:where(.tether-graph .status-success rect){fill:#e6f4ea;stroke:#1a7f37}
:where(.tether-graph .status-failure rect){fill:#fdecea;stroke:#cf222e}
:where(.tether-graph .status-running rect){fill:#e8f0fe;stroke:#0969da}
:where(.tether-graph .status-skipped rect){fill:#f0f0f0;stroke:#8c959f;stroke-dasharray:2 2}
:where(.tether-graph .external rect){fill:#fff;stroke-dasharray:4 3}
:where(.tether-graph .edge){fill:none;stroke:#6e7781;stroke-width:1.5}
:where(.tether-graph .arrowhead){fill:#6e7781}
:where(.tether-graph a:hover rect,.tether-graph a:focus rect){stroke-width:2.5}
"""


@dataclass(frozen=True)
class Node:
    """One box: a step (``deps``: the steps it waits for) or an asset (``deps``: its inputs)."""

    id: str  # unique; a repeated id keeps its first node
    label: str  # shown text (user data: always escaped)
    deps: tuple[str, ...] = ()  # upstream ids; unknown ids become dashed "external" nodes
    group: str | None = None  # assets: a small second line, a colour and the clustering order
    status: str | None = None  # e.g. "SUCCESS", "FAILURE", "RUNNING", "SKIPPED": class status-*
    href: str | None = None  # the node links here


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Layout:
    """Where everything goes. ``nodes`` includes the external nodes made up for unknown deps."""

    nodes: dict[str, Node]
    external: frozenset[str]
    columns: list[list[str]]  # ids per column, top to bottom
    boxes: dict[str, Box]
    edges: list[tuple[str, str]]  # (dep, node) in input order, including any that close a cycle
    groups: list[str]  # distinct groups, sorted: group-<index % GROUP_COLOURS>
    width: int
    height: int


def _clamp(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _box_width(n: Node) -> int:
    w = len(_clamp(n.label)) * CHAR_PX
    if n.group is not None:
        w = max(w, len(_clamp(n.group)) * SMALL_CHAR_PX)
    return max(MIN_W, round(w) + 2 * PAD_X)


def layout(nodes: Sequence[Node]) -> Layout:
    """Place ``nodes`` left to right; the same input always gives the same layout.

    A node's column is 1 + the largest column of its deps (sources in column 0). Cycles are
    broken deterministically: a dep that is a back edge of a depth-first search over the nodes in
    input order is ignored for placement (it is still drawn). Within a column, nodes start in
    group order then input order, and a few barycenter sweeps reorder them to reduce crossings.
    """
    by_id: dict[str, Node] = {}
    for n in nodes:
        by_id.setdefault(n.id, n)
    external = list(dict.fromkeys(d for n in by_id.values() for d in n.deps if d not in by_id))
    by_id.update((d, Node(id=d, label=d)) for d in external)
    edges = list(dict.fromkeys((d, n.id) for n in by_id.values() for d in n.deps))
    # Longest path, computed in post-order of an iterative DFS along deps.
    col: dict[str, int] = {}
    on_stack: set[str] = set()
    for root in by_id:
        if root in col:
            continue
        stack = [(root, iter(by_id[root].deps))]
        on_stack.add(root)
        while stack:
            nid, deps = stack[-1]
            for d in deps:
                if d not in col and d not in on_stack:
                    on_stack.add(d)
                    stack.append((d, iter(by_id[d].deps)))
                    break
            else:
                stack.pop()
                on_stack.discard(nid)
                col[nid] = 1 + max((col[d] for d in by_id[nid].deps if d in col), default=-1)
    groups = sorted({n.group for n in by_id.values() if n.group is not None})
    rank: dict[str | None, int] = {g: i for i, g in enumerate(groups)}
    group_rank = {nid: rank.get(n.group, -1) for nid, n in by_id.items()}
    columns: list[list[str]] = [[] for _ in range(max(col.values(), default=-1) + 1)]
    for nid in sorted(by_id, key=group_rank.__getitem__):  # stable: input order within a group
        columns[col[nid]].append(nid)
    preds: dict[str, list[str]] = {nid: [] for nid in by_id}
    succs: dict[str, list[str]] = {nid: [] for nid in by_id}
    for a, b in edges:
        if col[a] < col[b]:  # back edges stay out of the ordering too
            succs[a].append(b)
            preds[b].append(a)
    # A node's position is its offset from its column's middle: columns are centred vertically.
    pos = {nid: i - (len(c) - 1) / 2 for c in columns for i, nid in enumerate(c)}
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        nbrs = preds if down else succs
        for ci in range(1, len(columns)) if down else range(len(columns) - 2, -1, -1):
            col_ids = columns[ci]
            bary = {
                nid: sum(pos[m] for m in nbrs[nid]) / len(nbrs[nid]) if nbrs[nid] else pos[nid]
                for nid in col_ids
            }
            col_ids.sort(key=lambda nid: (bary[nid], group_rank[nid], pos[nid]))
            pos.update((nid, i - (len(col_ids) - 1) / 2) for i, nid in enumerate(col_ids))
    h = H_TWO if groups else H_ONE
    tallest = max((len(c) for c in columns), default=0)
    inner_h = max(tallest * (h + GAP_Y) - GAP_Y, 0)
    boxes: dict[str, Box] = {}
    x = MARGIN
    for c in columns:
        widths = [_box_width(by_id[nid]) for nid in c]
        y = MARGIN + (inner_h - (len(c) * (h + GAP_Y) - GAP_Y)) // 2
        for nid, w in zip(c, widths, strict=True):
            boxes[nid] = Box(x, y, w, h)
            y += h + GAP_Y
        x += max(widths) + GAP_X
    width = x - GAP_X + MARGIN if columns else 2 * MARGIN
    return Layout(
        by_id, frozenset(external), columns, boxes, edges, groups, width, inner_h + 2 * MARGIN
    )


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _esc(text: str) -> str:
    """Escaped for text and attribute values; characters XML cannot hold are dropped."""
    return html.escape(_NOT_XML.sub("", text), quote=True)


def _node_svg(n: Node, b: Box, lay: Layout) -> str:
    cls = ["node"]
    if n.id in lay.external:
        cls.append("external")
    if n.status:
        cls.append("status-" + (re.sub(r"[^a-z0-9]+", "-", n.status.lower()).strip("-") or "x"))
    if n.group is not None:
        cls.append(f"group-{lay.groups.index(n.group) % GROUP_COLOURS}")
    tip = n.label + (f" ({n.group})" if n.group else "") + (f": {n.status}" if n.status else "")
    tip += " (outside this graph)" if n.id in lay.external else ""
    cx = b.x + b.w // 2
    parts = [
        f'<g class="{" ".join(cls)}" data-id="{_esc(n.id)}"><title>{_esc(tip)}</title>',
        f'<rect x="{b.x}" y="{b.y}" width="{b.w}" height="{b.h}" rx="4"/>',
    ]
    y = b.y + b.h // 2 + 5 if n.group is None else b.y + 20
    parts.append(f'<text x="{cx}" y="{y}" text-anchor="middle">{_esc(_clamp(n.label))}</text>')
    if n.group is not None:
        parts.append(f'<text class="group" x="{cx}" y="{b.y + 36}" text-anchor="middle">')
        parts.append(f"{_esc(_clamp(n.group))}</text>")
    parts.append("</g>")
    svg = "".join(parts)
    return f'<a href="{_esc(n.href)}">{svg}</a>' if n.href else svg


def _edge_svg(src: Box, dst: Box, marker: str) -> str:
    x1, y1, x2, y2 = src.x + src.w, src.y + src.h // 2, dst.x, dst.y + dst.h // 2
    dx = max(GAP_X // 2, (x2 - x1) // 2) if x2 > x1 else MARGIN  # a back edge loops round
    d = f"M{x1},{y1} C{x1 + dx},{y1} {x2 - dx},{y2} {x2},{y2}"
    return f'<path class="edge" d="{d}" marker-end="url(#{marker})"/>'


def render_svg(nodes: Sequence[Node], title: str) -> str:
    """The graph as an ``<svg>`` element sized to fit exactly; ``title`` names it for screen
    readers, and its ``<desc>`` lists the edges in words. Ids inside (``<marker>``, title, desc)
    start with a prefix hashed from the title and the node ids, so two different graphs on one
    page do not collide."""
    lay = layout(nodes)
    key = "\0".join([title, *lay.nodes, *(f"{a}>{b}" for a, b in lay.edges)])
    p = "tg-" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:10]
    label = {nid: n.label for nid, n in lay.nodes.items()}
    if not lay.nodes:
        desc = "The graph is empty."
    elif lay.edges:
        desc = ", ".join(f"{label[a]} → {label[b]}" for a, b in lay.edges)
    else:
        desc = "No edges between: " + ", ".join(label.values())
    w, h = (lay.width, lay.height) if lay.nodes else (160, 40)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tether-graph" role="img" width="{w}" '
        f'height="{h}" viewBox="0 0 {w} {h}" aria-labelledby="{p}-title" '
        f'aria-describedby="{p}-desc"><title id="{p}-title">{_esc(title)}</title>'
        f'<desc id="{p}-desc">{_esc(desc)}</desc><style>{_STYLE}</style>',
        f'<defs><marker id="{p}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">'
        '<path class="arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>',
    ]
    if not lay.nodes:
        out.append(f'<text x="{w // 2}" y="{h // 2 + 5}" text-anchor="middle">(empty)</text>')
    out.append('<g class="edges">')
    out.extend(_edge_svg(lay.boxes[a], lay.boxes[b], f"{p}-arrow") for a, b in lay.edges)
    out.append('</g><g class="nodes">')
    out.extend(_node_svg(lay.nodes[nid], lay.boxes[nid], lay) for nid in lay.nodes)
    out.append("</g></svg>")
    return "".join(out)
