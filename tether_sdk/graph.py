"""Deterministic topological ordering of a step graph."""

from collections.abc import Mapping, Sequence


def topological_order(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Order ``names`` so every name comes after its ``deps``; None if there is a cycle.

    Stable: among the steps that are ready, the one declared first runs first, so the same
    definitions always give the same order (the UI and the tests rely on it).
    """
    position = {name: i for i, name in enumerate(names)}
    remaining = {name: set(deps.get(name, ())) for name in names}
    order: list[str] = []
    while remaining:
        ready = [n for n, d in remaining.items() if not d]
        if not ready:
            return None
        chosen = min(ready, key=position.__getitem__)
        order.append(chosen)
        del remaining[chosen]
        for d in remaining.values():
            d.discard(chosen)
    return order


def find_cycle(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Return one cycle as a path ``[a, b, ..., a]`` (empty when there is none)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for dep in deps.get(name, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return []

    for name in names:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []
