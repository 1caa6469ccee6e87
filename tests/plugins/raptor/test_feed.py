"""The product feed: produced from the product table, parsed back in each format and checked row by row; prices in
the configured culture; written to a file by ``hub raptor feed``; served by the daemon's HTTP server."""

from __future__ import annotations

import csv
import io
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import typer
from babel.numbers import parse_decimal
from typer.testing import CliRunner

from hub import app as hub_app
from hub.app import Hub
from hub.models import Product
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub_plugins import raptor as raptor_plugin
from hub_plugins.raptor.feed import COLUMNS, category_path, encode, format_price, product_rows, write_feed
from hub_plugins.raptor.settings import FeedSettings

PRODUCTS: list[dict[str, Any]] = [
    {"sku": "GRL-1-BLK", "name": "Nordhjem Gassgrill 920", "group": "grills", "category": "Gas grills",
     "brand": "Nordhjem", "price": Decimal("12490.00")},
    {"sku": "GRL-1-RED", "name": 'Grill "Rød"; 920, <XL> & co', "group": "grills", "category": "Gas grills",
     "brand": "Nordhjem", "price": Decimal("1299")},
    {"sku": "CVR-9", "name": "Trekk #9", "group": "grills", "category": None, "brand": None, "price": None},
    {"sku": "PNT-3", "name": None, "group": None, "category": "Paint; indoor", "brand": "Flügger",
     "price": Decimal("0.5")},
    {"sku": "TL-77", "name": "Drill 18V", "group": "power_tools", "category": "Drills", "brand": "Bosch",
     "price": Decimal("999.95")},
]  # fmt: skip
CONFIG = """\
database: {{url: "sqlite:///{db}"}}
timezone: Europe/Oslo
connectors:
  raptor:
    plugin: raptor
    settings:
      customer_id: "4711"
      feed: {{format: {format}, culture: nb-NO, master_id_pattern: "^(.+)-[A-Z]+$", batch_size: 2}}
"""


def _plugin_manager() -> Any:
    """The plugin manager hub builds, with the raptor plugin in it whether or not its entry point is installed."""
    pm = make_plugin_manager()
    if not pm.is_registered(raptor_plugin):
        pm.register(raptor_plugin, name="raptor")
    return pm


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    """A hub whose product table holds PRODUCTS, with a raptor connector writing feeds in ``format``."""
    hubs: list[Hub] = []

    def make(format: str = "csv") -> Hub:
        config = tmp_path / f"hub-{len(hubs)}.yaml"
        config.write_text(CONFIG.format(db=tmp_path / f"hub-{len(hubs)}.db", format=format), encoding="utf-8")
        hub = Hub.load(config, pm=_plugin_manager(), project_dir=tmp_path)
        upgrade(hub.engine)
        now = datetime.now(UTC)
        rows = [
            {"sku": p["sku"], "name": p["name"], "product_group": p["group"], "category": p["category"],
             "brand": p["brand"], "price": p["price"], "is_accessory": False, "source": "pim", "loaded_at": now}
            for p in PRODUCTS
        ]  # fmt: skip
        with hub.engine.begin() as conn:
            conn.execute(sa.insert(Product.__table__), rows)  # type: ignore[attr-defined]
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


def parse(text: str, format: str) -> list[dict[str, str]]:
    if format == "csv":
        return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
    if format == "json":
        return json.loads(text)  # type: ignore[no-any-return]
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "Products"
    return [{child.tag: child.text or "" for child in product} for product in root]


def assert_matches_product_table(hub: Hub, rows: list[dict[str, str]]) -> None:
    """Row by row, in table order: every column read back equals what the product table holds."""
    table = Product.__table__  # type: ignore[attr-defined]
    with hub.engine.connect() as conn:
        products = conn.execute(sa.select(table).order_by(table.c.id)).all()
    assert len(rows) == len(products)
    for row, product in zip(rows, products, strict=True):
        assert list(row) == list(COLUMNS)
        assert row["ProductId"] == product.sku
        assert row["MasterId"] == product.sku.rsplit("-", 1)[0] if product.sku.startswith("GRL") else product.sku
        assert row["Name"] == (product.name or "")
        assert row["Brand"] == (product.brand or "")
        if product.price is None:
            assert row["Price"] == ""
        else:
            assert parse_decimal(row["Price"], locale="nb_NO") == product.price
        names = [level.split("#", 1)[1] for level in row["CategoryPath"].split(";")] if row["CategoryPath"] else []
        expected = [" ".join(p.replace(";", " ").split()) for p in (product.product_group, product.category) if p]
        assert names == expected
        assert row["StockStatus"] == "true"


@pytest.mark.parametrize("format", ["csv", "json", "xml"])
def test_the_feed_file_in_each_format_matches_the_product_table_row_by_row(
    make_hub: Callable[..., Hub], tmp_path: Path, format: str
) -> None:
    hub = make_hub(format)
    out = tmp_path / "feeds" / f"products.{format}"

    count = write_feed(hub.engine, hub.config.connectors["raptor"].settings.feed, out)

    assert count == len(PRODUCTS)
    assert_matches_product_table(hub, parse(out.read_text(encoding="utf-8"), format))
    assert not list(out.parent.glob(".*partial")), "the temporary file was left behind"


def test_prices_are_written_in_the_configured_culture() -> None:
    price = Decimal("1299")
    assert format_price(price, FeedSettings(culture="nb-NO")) == "1\u00a0299,00"
    assert format_price(price, FeedSettings(culture="nb-NO", group_separator=" ")) == "1 299,00"
    assert format_price(price, FeedSettings(culture="da-DK")) == "1.299,00"
    assert format_price(price, FeedSettings(culture="en")) == "1,299.00"
    assert format_price(price, FeedSettings(culture="da-DK", group_separator="")) == "1299,00"
    assert format_price(Decimal("12490.5"), FeedSettings(culture="en", price_pattern="0.00")) == "12490.50"
    with pytest.raises(ValueError, match="unknown culture"):
        FeedSettings(culture="xx-QQ")


def test_category_paths_are_raptors_id_name_levels_without_separators_in_names() -> None:
    assert category_path("grills", "Gas grills") == "grills#grills;grills.gas-grills#Gas grills"
    assert category_path(None, "Paint; indoor, matt") == "paint-indoor-matt#Paint indoor matt"
    assert category_path(None, None) == ""


def test_rows_stream_in_batches_so_a_feed_is_never_read_whole(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub()
    feed = hub.config.connectors["raptor"].settings.feed
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(hub.engine, "before_cursor_execute", note)

    rows = product_rows(hub.engine, feed)
    first = next(rows)

    assert first["ProductId"] == "GRL-1-BLK" and len(statements) == 1, "more than one batch read for one row"
    assert len([first, *rows]) == len(PRODUCTS) and len(statements) == 4  # 2 + 2 + 1, then an empty batch


def test_hub_raptor_feed_writes_the_file(
    make_hub: Callable[..., Hub], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub("xml")
    monkeypatch.setattr(hub_app.plugin_registry, "make_plugin_manager", lambda **_: _plugin_manager())
    cli = typer.Typer()
    raptor_plugin.hub_commands(cli)
    out = tmp_path / "out" / "feed.json"

    result = CliRunner().invoke(
        cli, ["raptor", "feed", "--out", str(out), "--format", "json", "-c", str(hub.config.source_file)]
    )

    assert result.exit_code == 0, result.output
    assert f"wrote 5 products to {out} (json, prices in nb-NO)" in result.output
    assert_matches_product_table(hub, json.loads(out.read_text(encoding="utf-8")))


def test_the_daemon_serves_each_raptor_connectors_feed_under_plugins_raptor(make_hub: Callable[..., Hub]) -> None:
    from hub.daemon.http import HttpServer, Readiness, make_app
    from hub.daemon.jobs import JobBoard
    from hub.daemon.metrics import DaemonMetrics

    hub = make_hub("csv")
    board = JobBoard([])
    readiness = Readiness(hub.engine, board, lambda: True, timedelta(minutes=30), threading.Event())
    app = make_app(readiness, DaemonMetrics(hub.engine, board), hub=hub)

    with HttpServer(app, "127.0.0.1", 0).running() as url:
        answer = httpx.get(f"{url}/plugins/raptor/raptor/products.csv", timeout=10)
        missing = httpx.get(f"{url}/plugins/raptor/other/products.csv", timeout=10)

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert_matches_product_table(hub, parse(answer.text, "csv"))
    assert missing.status_code == 404


def test_encoding_an_empty_table_gives_a_valid_empty_feed() -> None:
    for format in ("csv", "json", "xml"):
        text = "".join(encode([], FeedSettings(format=format)))
        assert parse(text, format) == []


def test_the_feed_leaves_out_deleted_products_and_keeps_the_others(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub("csv")  # batches of 2: the deleted product sits inside the first one
    table = Product.__table__  # type: ignore[attr-defined]
    with hub.engine.begin() as conn:
        conn.execute(table.update().where(table.c.sku == "GRL-1-RED").values(deleted_at=datetime.now(UTC)))

    rows = list(product_rows(hub.engine, hub.config.connectors["raptor"].settings.feed))

    assert [row["ProductId"] for row in rows] == ["GRL-1-BLK", "CVR-9", "PNT-3", "TL-77"]
