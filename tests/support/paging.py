"""Walking a cursor-paged list to its end with ``next_cursor`` and back with ``prev_cursor``."""

from __future__ import annotations

from typing import Any

import httpx


async def _page(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, Any]
) -> dict[str, Any]:
    response = await http.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert set(page) == {"data", "prev_cursor", "next_cursor"}
    return page


async def walk_both_ways(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    key: str = "id",
    limit: int,
    params: dict[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """The ``key`` of every item walking forward from the first page, then walking back
    from the last page (given in list order). Each page holds at most ``limit`` items and
    has a cursor exactly where there is more to see that way."""
    base = {**(params or {}), "limit": limit}
    page = await _page(http, url, headers, base)
    assert page["prev_cursor"] is None
    pages = [page]
    while page["next_cursor"] is not None:
        page = await _page(http, url, headers, {**base, "after": page["next_cursor"]})
        assert page["prev_cursor"] is not None
        pages.append(page)
    forward = [item[key] for p in pages for item in p["data"]]
    backward = [item[key] for item in page["data"]]
    while page["prev_cursor"] is not None:
        page = await _page(http, url, headers, {**base, "before": page["prev_cursor"]})
        assert page["next_cursor"] is not None
        backward = [item[key] for item in page["data"]] + backward
    assert all(len(p["data"]) <= limit for p in pages)
    return forward, backward
