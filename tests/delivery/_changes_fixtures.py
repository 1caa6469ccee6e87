"""Shared by the outbound, views and change-detection tests: a recording destination, projects and rows.

The destination is registered through a plugin object on the Hub's plugin manager, like a third party's; it
does not depend on any real ESP plugin.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

from hub.app import Hub
from hub.connectors import ClientOptions, ConnectorSettings, Destination, KindSpec, Outgoing
from hub.delivery.outcomes import InvalidMessage, Outcome
from hub.models import Consent, Customer, Identity, Message, Order, OrderLine, OutboundState, Product
from hub.plugins import hookimpl
from hub.schema import upgrade

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

CRM_MAPPING = """\
description: a small CRM's contact fields
fields:
  email: customer.email
  firstName: customer.first_name
  mobile: customer.phone
  birthDay: customer.birth_date
  erpId: identities.external_id.erp
  prefs.email: {path: consents.email.status, transforms: [{map: {opt_in: true, opt_out: false}}]}
"""

customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
identity_t: sa.Table = Identity.__table__  # type: ignore[attr-defined]
consent_t: sa.Table = Consent.__table__  # type: ignore[attr-defined]
order_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
line_t: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
product_t: sa.Table = Product.__table__  # type: ignore[attr-defined]
message_t: sa.Table = Message.__table__  # type: ignore[attr-defined]
state_t: sa.Table = OutboundState.__table__  # type: ignore[attr-defined]


class RecorderSettings(ConnectorSettings):
    require: list[str] = []  # contact fields without which prepare refuses a contact
    fail_on: list[str] = []  # e-mails on which prepare crashes (to cut a pass short)


class Recorder(Destination):
    """Takes contacts, deletes and orders; ``prepare`` wraps the view so the tests see it ran."""

    type = "recorder"
    Settings = RecorderSettings
    kinds: ClassVar[dict[str, KindSpec]] = {
        "contact_upsert": KindSpec(batch_size=50),
        "contact_delete": KindSpec(),
        "order": KindSpec(batch_size=10),
    }
    settings: RecorderSettings

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url="http://127.0.0.1:9")

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        if kind == "contact_upsert":
            if view["_hub"]["email"] in self.settings.fail_on:
                raise RuntimeError("the plugin crashed")
            missing = [name for name in self.settings.require if view.get(name) in (None, "")]
            if missing:
                raise InvalidMessage(f"no {', '.join(missing)}")
        return {"prepared": kind, **view}

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        return [Outcome.sent() for _ in batch]


class ContactsOnly(Recorder):
    type = "contacts_only"
    kinds: ClassVar[dict[str, KindSpec]] = {"contact_upsert": KindSpec()}


class RecorderPlugin:
    @hookimpl
    def hub_connector_types(self) -> list[type[Destination]]:
        return [Recorder, ContactsOnly]


def write_project(
    root: Path,
    url: str,
    *,
    mapping: str | Path = CRM_MAPPING,
    plugin: str = "recorder",
    settings: dict[str, Any] | None = None,
    batch_size: int = 100,
    demo: bool = False,
) -> Path:
    """A hub.yaml with a destination ``crm`` (and, with ``demo``, the demo's sources on ``var/demo``)."""
    (root / "mappings").mkdir(exist_ok=True)
    if isinstance(mapping, Path):
        mapping_path = mapping
    else:
        mapping_path = root / "mappings" / "crm.yaml"
        mapping_path.write_text(mapping, encoding="utf-8")
    sources = ""
    if demo:
        for name in ("pim_products", "stores", "webshop_orders", "pos_receipts", "erp_customers"):
            shutil.copy(REPO / "mappings" / f"{name}.yaml", root / "mappings")
        sources = _DEMO_SOURCES
    config = root / "hub.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            database: {{url: "{url}"}}
            project_dir: {root}
            timezone: Europe/Oslo
            batch_size: {batch_size}
            identity:
              source_priority: {"[erp, webshop, pos]" if demo else "[]"}
              blocked_values: {{email: ["noreply@shop.no"], member_no: ["0"], phone: ["+4700000000"]}}
            connectors:
              crm:
                plugin: {plugin}
                mapping: {mapping_path}
                settings: {settings or {}}
            """
        )
        + sources,
        encoding="utf-8",
    )
    return config


_DEMO_SOURCES = """\
  pim:
    plugin: files
    mapping:
      products: mappings/pim_products.yaml
      stores: mappings/stores.yaml
    settings:
      streams:
        products: {paths: ["var/demo/pim/products.jsonl"], key: sku, updated_at: updated_at}
        stores: {paths: ["var/demo/pim/stores.csv"], key: store_id}
  webshop:
    plugin: files
    mapping: {orders: mappings/webshop_orders.yaml}
    settings: {streams: {orders: {paths: ["var/demo/webshop/orders-*.jsonl"], key: id}}}
  pos:
    plugin: files
    mapping: {receipts: mappings/pos_receipts.yaml}
    settings: {streams: {receipts: {paths: ["var/demo/pos/receipts-*.csv"]}}}
  erp:
    plugin: files
    mapping: {customers: mappings/erp_customers.yaml}
    settings:
      streams:
        customers: {paths: ["var/demo/erp/customers.csv"], delimiter: ";", key: kundenr, updated_at: endret}
"""


def load_hub(config: Path) -> Hub:
    hub = Hub.load(config, plugins=[RecorderPlugin()])
    upgrade(hub.engine)
    return hub


HubFactory = Callable[..., Hub]


# --------------------------------------------------------------------------------------------------- rows


def add_customer(conn: sa.Connection, customer_id: int, *, at: datetime = T0, **columns: Any) -> int:
    conn.execute(customer_t.insert().values(id=customer_id, created_at=at, updated_at=at, **columns))
    for kind in ("email", "phone", "member_no"):
        if columns.get(kind):
            add_identity(conn, customer_id, kind, columns[kind], at=at)
    return customer_id


def add_identity(
    conn: sa.Connection, customer_id: int, kind: str, value: str, *, system: str = "", at: datetime = T0
) -> None:
    conn.execute(
        identity_t.insert().values(
            customer_id=customer_id, kind=kind, system=system, value=value, source=system or "test", first_seen_at=at
        )
    )


def add_consent(
    conn: sa.Connection, customer_id: int, channel: str, status: str, *, at: datetime = T0, source: str = "erp"
) -> None:
    conn.execute(
        consent_t.insert().values(
            customer_id=customer_id, channel=channel, status=status, at=at, source=source, updated_at=at
        )
    )


def add_order(
    conn: sa.Connection,
    order_id: int,
    customer_id: int | None,
    *,
    source: str = "pos",
    lines: list[tuple[str, str, str]] = (),  # type: ignore[assignment]  # (sku, quantity, unit price)
    at: datetime = T0,
) -> None:
    conn.execute(
        order_t.insert().values(
            id=order_id,
            source=source,
            external_id=f"R-{order_id}",
            customer_id=customer_id,
            placed_at=at,
            channel="pos",
            store_external_id="S1",
            currency="NOK",
            total=sum((Decimal(q) * Decimal(p) for _, q, p in lines), Decimal(0)),
            is_return=False,
            loaded_at=at,
        )
    )
    for line_no, (sku, quantity, price) in enumerate(lines):
        conn.execute(
            line_t.insert().values(
                order_id=order_id,
                line_no=line_no,
                sku=sku,
                quantity=Decimal(quantity),
                unit_price=Decimal(price),
                line_total=Decimal(quantity) * Decimal(price),
            )
        )


def add_product(conn: sa.Connection, sku: str, name: str, group: str) -> None:
    conn.execute(product_t.insert().values(sku=sku, name=name, product_group=group, source="pim", loaded_at=T0))


def touch(conn: sa.Connection, customer_id: int, at: datetime, **columns: Any) -> None:
    conn.execute(customer_t.update().where(customer_t.c.id == customer_id).values(updated_at=at, **columns))


def messages(hub: Hub, **where: Any) -> list[Any]:
    query = sa.select(message_t).order_by(message_t.c.id)
    for column, value in where.items():
        query = query.where(message_t.c[column] == value)
    with hub.engine.connect() as conn:
        return list(conn.execute(query))


def states(hub: Hub) -> dict[int, Any]:
    with hub.engine.connect() as conn:
        return {row.customer_id: row for row in conn.execute(sa.select(state_t))}


BIRTH = date(1980, 5, 17)
