"""POSLog through the files source: cursors as for any file, and a sync in which a POSLog receipt and a CSV
receipt of the same sale are one order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub import Batch, ConnectorContext
from hub.app import Hub
from hub.engine.run import SyncEngine
from hub.models import Customer, Order, OrderLine, Reject
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub_plugins import files as files_plugin
from hub_plugins import standard as standard_plugin
from hub_plugins.files.settings import FilesSettings
from hub_plugins.files.source import FilesSource

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[3]
SALE = (
    "<Transaction><RetailStoreID>S001</RetailStoreID><WorkstationID>2</WorkstationID>"
    "<SequenceNumber>{n}</SequenceNumber><BusinessDayDate>2024-03-02</BusinessDayDate><RetailTransaction>"
    "<LineItem><Sale><ItemID>A-1</ItemID><ExtendedAmount>10.00</ExtendedAmount></Sale></LineItem>"
    "</RetailTransaction></Transaction>\n"
)


def make_source(root: Path, batch_size: int = 2, **settings: Any) -> FilesSource:
    context = ConnectorContext(name="pos", project_dir=root, timezone="Europe/Oslo", extra={"batch_size": batch_size})
    return FilesSource(FilesSettings(**settings), context)


def read(source: FilesSource, cursor: Any = None) -> list[Batch]:
    return [Batch(b.records, json.loads(json.dumps(b.cursor))) for b in source.read("records", cursor)]


def ids(batches: list[Batch]) -> list[str]:
    return [r.get("receipt_id") or r["_error"] for batch in batches for r in batch.records]


def write_poslog(path: Path, numbers: range) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(SALE.format(n=n) for n in numbers)
    path.write_text(f"<POSLog>\n{body}</POSLog>\n", encoding="utf-8")


def test_a_poslog_stream_reads_receipts_and_rejects_and_a_second_read_reads_nothing(tmp_path):
    shutil.copy(DATA / "poslog_sample.xml", tmp_path / "day1.xml")
    source = make_source(tmp_path, paths=["*.xml"], format="poslog")

    batches = read(source)

    assert len(ids(batches)) == 5
    assert [r["_error"] for b in batches for r in b.records if "_error" in r] == [
        "line 120: transaction TransactionID '1000000005': LineItem 1: Sale Quantity 'two' is not a number"
    ]
    assert source.streams()["records"].description == "ARTS POSLog XML files matching *.xml"
    assert read(source, batches[-1].cursor) == []


@pytest.mark.parametrize("crash_after", range(5))
def test_a_read_resumed_from_a_mid_file_cursor_reads_exactly_the_rest(tmp_path, crash_after):
    write_poslog(tmp_path / "a.xml", range(1, 6))
    write_poslog(tmp_path / "b.xml", range(6, 10))
    source = make_source(tmp_path, paths=["*.xml"])  # .xml is POSLog by default
    full = read(source)
    committed = full[: crash_after + 1]

    resumed = read(source, committed[-1].cursor)

    assert ids(committed) + ids(resumed) == ids(full)
    assert len(ids(full)) == 9


def test_a_changed_file_is_read_again_and_a_new_one_alone(tmp_path):
    write_poslog(tmp_path / "a.xml", range(1, 3))
    source = make_source(tmp_path, paths=["*.xml"], format="poslog")
    cursor = read(source)[-1].cursor
    write_poslog(tmp_path / "b.xml", range(3, 4))

    assert ids(read(source, cursor)) == ["S001-2-2024-03-02-3"]


def test_check_names_a_refused_file(tmp_path):
    (tmp_path / "bomb.xml").write_text(
        '<!DOCTYPE POSLog [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><POSLog>&b;</POSLog>', encoding="utf-8"
    )

    result = make_source(tmp_path, paths=["*.xml"], format="poslog").check()

    assert not result.ok
    assert "records: bomb.xml: line 1: refused: it declares the entity 'a'" in result.message


# -- a sync: POSLog and CSV of the same sales ------------------------------------------------------------------

CONFIG = """\
database: {url: "sqlite:///var/hub.db"}
timezone: Europe/Oslo
connectors:
  pos:
    plugin: files
    mapping: {receipts: mappings/pos_receipts.yaml, poslog: mappings/pos_poslog.yaml}
    settings:
      streams:
        receipts: {paths: ["exports/*.csv"]}
        poslog: {paths: ["exports/*.xml"], format: poslog}
"""
CSV = """\
receipt_id,store_id,register_id,business_date,timestamp,line_no,sku,qty,unit_price,line_discount,line_total,currency,loyalty_id,original_receipt_id
1000000001,S001,2,2024-03-02,2024-03-02 12:00:00,1,A-1,2,100.00,20.00,180.00,NOK,7012345678,
1000000001,S001,2,2024-03-02,2024-03-02 12:00:00,2,B-2,1,49.90,0.00,49.90,NOK,7012345678,
"""


def test_a_sync_makes_one_order_of_a_sale_exported_both_as_csv_and_as_poslog(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "day.csv").write_text(CSV, encoding="utf-8")
    shutil.copy(DATA / "poslog_sample.xml", tmp_path / "exports" / "day.xml")
    (tmp_path / "var").mkdir()
    (tmp_path / "mappings").symlink_to(REPO / "mappings")
    (tmp_path / "hub.yaml").write_text(CONFIG, encoding="utf-8")
    hub = Hub.load(
        tmp_path / "hub.yaml",
        pm=make_plugin_manager(entrypoints=False, plugins=[files_plugin, standard_plugin]),
        project_dir=tmp_path,
    )
    upgrade(hub.engine)

    summary = SyncEngine(hub).sync()

    order, line, reject = Order.__table__, OrderLine.__table__, Reject.__table__
    with hub.engine.connect() as conn:
        orders = conn.execute(sa.select(order.c.external_id, order.c.is_return, order.c.total)).all()
        lines = conn.execute(
            sa.select(line.c.line_no, line.c.sku, line.c.quantity)
            .join(order, order.c.id == line.c.order_id)
            .where(order.c.external_id == "1000000001")
        ).all()
        customers = conn.scalar(sa.select(sa.func.count()).select_from(Customer.__table__))
        rejects = conn.execute(sa.select(reject.c.stream, reject.c.stage, reject.c.errors, reject.c.payload)).all()
    assert [s.status for s in summary.streams] == ["succeeded", "succeeded"]
    assert sorted(o.external_id for o in orders) == ["1000000001", "1000000003", "1000000006", "S001-1-2024-03-02-77"]
    assert {o.external_id: o.is_return for o in orders}["1000000003"] is True
    assert {o.external_id: float(o.total) for o in orders}["1000000001"] == 229.90
    assert [(n, sku, float(q)) for n, sku, q in sorted(lines)] == [(1, "A-1", 2.0), (2, "B-2", 1.0)]
    assert customers == 2  # 7012345678 from both exports, and 7099999999
    (stream, stage, errors, payload), *others = rejects
    assert (stream, stage, others) == ("poslog", "read", [])
    assert errors == [
        "line 120: transaction TransactionID '1000000005': LineItem 1: Sale Quantity 'two' is not a number"
    ]
    assert payload["_raw"].startswith("<Transaction>") and "<Quantity>two</Quantity>" in payload["_raw"]
