"""The product feed Raptor pulls nightly, read from hub's product table in batches and encoded as CSV, JSON or XML.

One row per SKU, products marked deleted (``product.deleted_at``) left out: the feed is always whole, pulled
nightly, and the feed format we know has no "removed" field (``StockStatus`` says in stock or not), so leaving a
product out is how the feed says it is gone. (That Raptor then drops it from its catalogue is an inference: the
notes we have do not say what it does with a product missing from a feed.) ``ProductId`` is the SKU, which is
also what buy events send as the product (Raptor requires the two to be equal); ``MasterId`` groups variants
(``feed.master_id_pattern``); ``CategoryPath`` is Raptor's ``id#name;id#name`` form, from the product group down
to the category; ``Price`` is written in the configured culture (``1 299,00`` for nb-NO); ``StockStatus`` is
``true`` or ``false``. Rows stream from the database a batch at a time (keyset on the primary key, one short read
per batch), so a feed of any size never sits in memory and a slow download never holds a transaction open.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import sqlalchemy as sa
from babel.numbers import format_decimal

from hub.models import Product
from hub_plugins.raptor.settings import FeedSettings
from hub_plugins.raptor.tracking import master_id

COLUMNS: tuple[str, ...] = ("ProductId", "MasterId", "Name", "CategoryPath", "Brand", "Price", "StockStatus")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xml": "application/xml; charset=utf-8",
}
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]
#: Raptor splits category paths on these; a name may not contain them.
_PATH_SEPARATORS = re.compile(r"[,;#]+")
_NOT_A_SLUG = re.compile(r"[^0-9a-z]+")
#: Characters XML 1.0 cannot hold at all (control characters other than tab, newline and carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_GROUPING = ("\u00a0", "\u202f", " ", ".", ",", "'", "\u2019")


def format_price(value: Decimal | None, feed: FeedSettings) -> str:
    """``value`` in the feed's culture and pattern (``Decimal("1299")`` -> ``"1 299,00"`` in nb-NO); empty for
    none. ``group_separator`` replaces the culture's thousands separator."""
    if value is None:
        return ""
    text = format_decimal(value, format=feed.price_pattern, locale=feed.culture.replace("-", "_"))
    if feed.group_separator is None:
        return text
    decimal_mark = format_decimal(Decimal("0.5"), format="0.0", locale=feed.culture.replace("-", "_"))[1]
    whole, mark, fraction = text.partition(decimal_mark)
    for grouping in _GROUPING:
        if grouping != decimal_mark:
            whole = whole.replace(grouping, feed.group_separator)
    return whole + mark + fraction


def _name(text: str) -> str:
    return " ".join(_PATH_SEPARATORS.sub(" ", text).split())


def _slug(text: str) -> str:
    return _NOT_A_SLUG.sub("-", text.lower()).strip("-")


def category_path(group: str | None, category: str | None) -> str:
    """``("grills", "Gas grills")`` -> ``grills#grills;grills.gas-grills#Gas grills`` (Raptor's ``id#name``
    levels, top first). Either part may be missing."""
    levels: list[str] = []
    parent = ""
    for part in (group, category):
        if not part or not part.strip():
            continue
        node = _slug(part) or "x"
        node = f"{parent}.{node}" if parent else node
        levels.append(f"{node}#{_name(part)}")
        parent = node
    return ";".join(levels)


def product_rows(engine: sa.Engine, feed: FeedSettings) -> Iterator[dict[str, str]]:
    """Every product not marked deleted as a feed row, in SKU-table order, read ``feed.batch_size`` at a time."""
    p = _product
    columns = (p.c.id, p.c.sku, p.c.name, p.c.product_group, p.c.category, p.c.brand, p.c.price)
    after = 0
    stock = "true" if feed.in_stock else "false"
    while True:
        query = (
            sa.select(*columns).where(p.c.id > after, p.c.deleted_at.is_(None)).order_by(p.c.id).limit(feed.batch_size)
        )
        with engine.connect() as conn:
            batch = conn.execute(query).all()
        if not batch:
            return
        for _id, sku, name, group, category, brand, price in batch:
            yield {
                "ProductId": sku,
                "MasterId": master_id(sku, feed.master_id_pattern),
                "Name": name or "",
                "CategoryPath": category_path(group, category),
                "Brand": brand or "",
                "Price": format_price(price, feed),
                "StockStatus": stock,
            }
        after = batch[-1][0]


def _batched(rows: Iterable[dict[str, str]], size: int) -> Iterator[list[dict[str, str]]]:
    batch: list[dict[str, str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode(rows: Iterable[dict[str, str]], feed: FeedSettings, *, chunk: int = 500) -> Iterator[str]:
    """The feed as text chunks in ``feed.format``, ``chunk`` rows per piece (for a file or an HTTP body)."""
    if feed.format == "csv":
        yield from _csv(rows, feed.csv_separator, chunk)
    elif feed.format == "json":
        yield from _json(rows, chunk)
    else:
        yield from _xml(rows, chunk)


def _csv(rows: Iterable[dict[str, str]], separator: str, chunk: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for batch in _batched(rows, chunk):
        writer.writerows([row[column] for column in COLUMNS] for row in batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _json(rows: Iterable[dict[str, str]], chunk: int) -> Iterator[str]:
    yield "["
    first = True
    for batch in _batched(rows, chunk):
        parts = []
        for row in batch:
            parts.append(("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False))
            first = False
        yield "".join(parts)
    yield "\n]\n"


def _xml(rows: Iterable[dict[str, str]], chunk: int) -> Iterator[str]:
    yield '<?xml version="1.0" encoding="UTF-8"?>\n<Products>\n'
    for batch in _batched(rows, chunk):
        yield "".join(
            "  <Product>" + "".join(f"<{c}>{escape(_NOT_XML.sub('', row[c]))}</{c}>" for c in COLUMNS) + "</Product>\n"
            for row in batch
        )
    yield "</Products>\n"


def write_feed(engine: sa.Engine, feed: FeedSettings, path: Path) -> int:
    """Write the feed to ``path`` atomically (a temporary file renamed over it, so a pull never reads half a
    feed); returns the number of products."""
    counted = _Counter(product_rows(engine, feed))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            for piece in encode(counted, feed):
                out.write(piece)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return counted.count


class _Counter:
    """Counts the rows an iterator hands on."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self._rows = iter(rows)
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for row in self._rows:
            self.count += 1
            yield row
