"""Stores, products and their relations, orders and their lines, carts, wishlists."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import Money, UTCDateTime


class Store(SQLModel, table=True):
    __tablename__ = "store"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True)
    name: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    opened_at: date | None = None
    source: str
    loaded_at: datetime = Field(sa_type=UTCDateTime)


class Product(SQLModel, table=True):
    """A sellable item, keyed by SKU across systems; ``product_group`` drives post-purchase programmes."""

    __tablename__ = "product"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(unique=True)
    name: str | None = None
    product_group: str | None = Field(default=None, index=True)
    category: str | None = None
    brand: str | None = None
    price: Decimal | None = Field(default=None, sa_type=Money)
    is_accessory: bool = False
    #: Units available to sell (all locations), and the source's own in-stock flag; either may be unknown.
    #: A load that does not give them keeps the stored ones: stock often comes from another stream than the
    #: catalogue (Shopify's inventory levels, an ERP's stock). Changes are ``product_event`` rows.
    stock: Decimal | None = Field(default=None, sa_type=Money)
    in_stock: bool | None = None
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: A source reported the product deleted (:mod:`hub.engine.deletions`); a later load of it clears this.
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    source: str
    loaded_at: datetime = Field(sa_type=UTCDateTime)


class ProductRelation(SQLModel, table=True):
    """An accessory or cross-sell link between two SKUs. Keyed by SKU so relations may arrive before products."""

    __tablename__ = "product_relation"
    __table_args__ = (UniqueConstraint("sku", "related_sku", "kind", name="uq_product_relation"),)

    id: int | None = Field(default=None, primary_key=True)
    sku: str
    related_sku: str
    kind: str
    source: str
    loaded_at: datetime = Field(sa_type=UTCDateTime)


class Order(SQLModel, table=True):
    """An order or receipt, unique per (source connector, external id). Returns are orders with negative lines."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_orders_source_external"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    external_id: str
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    placed_at: datetime = Field(sa_type=UTCDateTime)
    channel: str | None = None
    store_external_id: str | None = None
    currency: str | None = None
    total: Decimal | None = Field(default=None, sa_type=Money)
    status: str | None = None
    is_return: bool = False
    original_order_external_id: str | None = None
    #: The marketing campaign the order came from (a discount code, a UTM campaign): trigger filters read it.
    campaign: str | None = None
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    loaded_at: datetime = Field(sa_type=UTCDateTime)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_line"
    __table_args__ = (UniqueConstraint("order_id", "line_no", name="uq_order_line"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id")
    line_no: int
    sku: str | None = None
    quantity: Decimal = Field(sa_type=Money)
    unit_price: Decimal | None = Field(default=None, sa_type=Money)
    discount: Decimal | None = Field(default=None, sa_type=Money)
    line_total: Decimal | None = Field(default=None, sa_type=Money)


class Cart(SQLModel, table=True):
    __tablename__ = "cart"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_cart_source_external"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    external_id: str
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    currency: str | None = None
    total: Decimal | None = Field(default=None, sa_type=Money)
    status: str | None = None
    items_json: list[Any] | dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    loaded_at: datetime = Field(sa_type=UTCDateTime)


class WishlistItem(SQLModel, table=True):
    """A product a customer saved for later, unique per (source connector, external id); ``removed_at`` set
    when the source says it left the list. The stock and price triggers read it as they read carts."""

    __tablename__ = "wishlist_item"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_wishlist_item_source_external"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    external_id: str
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    sku: str = Field(index=True)
    added_at: datetime = Field(sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    loaded_at: datetime = Field(sa_type=UTCDateTime)
