"""Product events: a product's stock or price changed, as hub saw it at load time.

The loader writes one row per change it sees (:mod:`hub.engine.load`): a product row whose price, stock or
in-stock flag differs from the stored one, or a ``stock_level`` / ``price`` event a source maps (Shopify's
inventory levels). The first value a product gets is not a change, so a first load records nothing. The stock and
price triggers (``back_in_stock``, ``price_drop``) read these rows past their id watermark.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Field, SQLModel

from hub.db import Money, UTCDateTime

#: ``kind`` of a change of the units in stock or of the in-stock flag.
STOCK = "stock"
#: ``kind`` of a change of the price.
PRICE = "price"
#: Amounts are stored to four places (:class:`hub.db.Money`): values are compared at that precision.
PLACES = Decimal("0.0001")


class ProductEvent(SQLModel, table=True):
    """One change of a product's stock or price.

    ``old_value`` / ``new_value`` are the units in stock (``stock``) or the price (``price``); for stock,
    ``was_available`` / ``available`` say whether it could be bought before and after: the source's in-stock
    flag where it gives one, else units above zero (unknown when neither is known).
    """

    __tablename__ = "product_event"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(index=True)
    kind: str
    old_value: Decimal | None = Field(default=None, sa_type=Money)
    new_value: Decimal | None = Field(default=None, sa_type=Money)
    was_available: bool | None = None
    available: bool | None = None
    at: datetime = Field(sa_type=UTCDateTime)
    source: str
    loaded_at: datetime = Field(sa_type=UTCDateTime)


def availability(stock: Decimal | None, in_stock: bool | None) -> bool | None:
    """Whether a product can be bought: the source's in-stock flag where known, else units above zero."""
    if in_stock is not None:
        return in_stock
    return None if stock is None else stock > 0
