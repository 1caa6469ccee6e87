"""Walking one WooCommerce list endpoint to its end, page by page, without losing or repeating a row.

WooCommerce pages by position (``page``/``offset`` with ``per_page``), and positions move while hub reads: a row
changed after hub passed it leaves its place (sorted by ``modified`` it moves to the end), a trashed or deleted
one leaves the list, and every row after it slides one place forward. Asking for page ``n + 1`` would then skip
the row that slid onto page ``n``. So each request starts ``overlap`` rows *before* where the last one ended
(``offset``), and keeps only the rows that sort after the last row taken (its sort key: ``(modified, id)`` for
orders and products, ``id`` for customers): rows taken before are recognised and dropped, whatever moved. If no
row of the window sorts at or before the last one taken, more rows slid than the overlap covers, and the window
steps back a page until it finds one. A row changed after hub passed it comes again at the end of the list with
its new change time, which is right: it is a new version.

Malformed rows (no readable change time) have no sort key; they are placed by their position, and the last one
taken is recognised by its id.

The walk's state (``offset``, the last sort key and id) goes into the stream's cursor after every page, so a read
killed mid-way resumes at the next row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hub import SourceError
from hub.sources.http import SourceHttp, describe
from hub_plugins.woocommerce.errors import api_error

Row = dict[str, Any]
SortKey = list[int]
#: A row's sort key as the listing sorts (a JSON-ready list of ints), or None for a row that cannot be placed.
KeyOf = Callable[[Row], SortKey | None]


@dataclass(slots=True)
class Page:
    """The rows one request added, the walk's state after them, and whether the list ended."""

    rows: list[Row]
    state: dict[str, Any]
    done: bool
    server_time: datetime | None


def walk(
    http: SourceHttp,
    path: str,
    params: Mapping[str, Any],
    *,
    key_of: KeyOf,
    per_page: int,
    state: Mapping[str, Any] | None = None,
) -> Iterator[Page]:
    """Every row of the list at ``path`` with ``params``, one :class:`Page` per request (see the module doc)."""
    offset = int(state.get("offset", 0)) if state else 0
    last: SortKey | None = list(state["last"]) if state and state.get("last") is not None else None
    last_id: Any = state.get("last_id") if state else None
    overlap = max(1, per_page // 10)
    start = max(0, offset - overlap)
    while True:
        rows, server_time = _get(http, path, {**params, "per_page": per_page, "offset": start})
        anchor = _anchor(rows, key_of, last, last_id, overlap)
        if anchor < 0 and start > 0 and offset > 0:
            start = max(0, start - per_page)  # more rows slid forward than the overlap covers: look further back
            continue
        fresh = rows[anchor + 1 :]
        for row in fresh:
            key = key_of(row)
            if key is not None:
                last = key
            last_id = row.get("id")
        offset = start + len(rows)
        done = len(rows) < per_page
        yield Page(fresh, {"offset": offset, "last": last, "last_id": last_id}, done, server_time)
        if done:
            return
        start = max(0, offset - overlap)


def _anchor(rows: list[Row], key_of: KeyOf, last: SortKey | None, last_id: Any, overlap: int) -> int:
    """The index of the last row of the window that was taken before (-1: none)."""
    anchor = -1
    if last is None and last_id is None:
        return anchor
    for index, row in enumerate(rows):
        key = key_of(row)
        if key is not None:
            if last is not None and key <= last:
                anchor = index
        elif index <= overlap and last_id is not None and row.get("id") == last_id:
            anchor = max(anchor, index)
    return anchor


def _get(http: SourceHttp, path: str, params: Mapping[str, Any]) -> tuple[list[Row], datetime | None]:
    response = http.get(path, params=dict(params))
    if response.status_code != 200:
        raise SourceError(f"{http.name}: {api_error(response)}")
    try:
        body = response.json()
    except ValueError:
        raise SourceError(f"{http.name}: {describe(response)} is not JSON; is this the WooCommerce API?") from None
    if not isinstance(body, list):
        raise SourceError(f"{http.name}: {describe(response, 100)} is not a list of records")
    rows = [row if isinstance(row, dict) else {"_not_an_object": row} for row in body]
    return rows, server_time(response)


def server_time(response: httpx.Response) -> datetime | None:
    """The server's clock from its ``Date`` header (None when missing or unreadable)."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
