"""Following an API list's pages: each page answers ``next_cursor`` (null at the end), which
the next request passes back (as ``cursor``, ``after`` or ``before``: each fetch knows)."""

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# fetch(cursor, how many at most) -> (the page's items, its next_cursor)
Fetch = Callable[[str | None, int], tuple[list[T], str | None]]


def collect(fetch: Fetch[T], limit: int | None, page_size: int) -> list[T]:
    """The items of the pages in order, up to ``limit`` (None: all of them), asking for at
    most ``page_size`` a page."""
    found: list[T] = []
    cursor: str | None = None
    while limit is None or len(found) < limit:
        wanted = page_size if limit is None else min(limit - len(found), page_size)
        items, cursor = fetch(cursor, wanted)
        found += items
        if cursor is None or not items:
            break
    return found if limit is None else found[:limit]
