"""A small shop's order history with planted follow-up patterns, and the rows the tests add by hand.

A catalogue of four groups, one of them wide (50 paints). Every customer buys a few random baskets over a year
(the noise; one product is a bestseller that 40 % of customers take whatever else they bought), and each planted
pattern makes a share of the customers buy its antecedent and then, with its probability, its follow-up within
its window. Some customers have a duplicate record merged into them, and their follow-up is recorded on the
duplicate, as a store receipt under a member number would be before the merge.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from hub.models import Customer, Order, OrderLine, Product, ProductRelation

NOW = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
START = NOW - timedelta(days=365)

customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
order_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
line_t: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
product_t: sa.Table = Product.__table__  # type: ignore[attr-defined]
relation_t: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]

#: sku -> (group, is_accessory)
CATALOGUE: dict[str, tuple[str, bool]] = {
    **{f"CONSOLE{i}": ("consoles", False) for i in range(1, 4)},
    **{f"GAME{i}": ("consoles", True) for i in range(1, 9)},
    **{f"DRILL{i}": ("tools", False) for i in range(1, 4)},
    **{f"BITS{i}": ("tools", True) for i in range(1, 6)},
    **{f"GRILL{i}": ("grills", False) for i in range(1, 4)},
    **{f"COVER{i}": ("grills", True) for i in range(1, 6)},
    **{f"PAINT{i}": ("paint", False) for i in range(1, 51)},
    "BATTERIES": ("tools", True),
}
BESTSELLER = "BATTERIES"


@dataclass(frozen=True, slots=True)
class Plant:
    """Buyers of ``antecedent`` buy ``follow_up`` within ``within`` days, with ``probability``."""

    antecedent: str
    follow_up: str
    probability: float = 0.8
    within: int = 30
    #: The share of customers who buy the antecedent at all.
    reach: float = 0.15


PLANTS = (Plant("CONSOLE1", "GAME3"), Plant("DRILL2", "BITS4", probability=0.7, within=20))


class Shop:
    """Writes customers (ids 1, 2, ... in order), orders and lines through one connection."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._customer_ids = itertools.count(1)
        self._order_ids = itertools.count(1)
        self.customers: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []

    def products(self, catalogue: dict[str, tuple[str, bool]] = CATALOGUE) -> None:
        self.conn.execute(
            product_t.insert(),
            [
                {
                    "sku": sku, "name": sku.title(), "product_group": group, "brand": "Acme", "is_accessory": accessory,
                    "price": Decimal(100), "source": "pim", "loaded_at": NOW,
                }
                for sku, (group, accessory) in catalogue.items()
            ],
        )  # fmt: skip

    def relation(self, sku: str, related: str, kind: str = "accessory") -> None:
        self.conn.execute(
            relation_t.insert().values(sku=sku, related_sku=related, kind=kind, source="pim", loaded_at=NOW)
        )

    def customer(self, merged_into: int | None = None) -> int:
        customer_id = next(self._customer_ids)
        self.customers.append(
            {"id": customer_id, "email": f"c{customer_id}@example.no", "first_name": f"C{customer_id}",
             "merged_into": merged_into, "created_at": START, "updated_at": START}
        )  # fmt: skip
        return customer_id

    def order(self, customer_id: int, at: datetime, *skus: str, is_return: bool = False) -> int:
        order_id = next(self._order_ids)
        self.orders.append(
            {"id": order_id, "source": "pos", "external_id": f"R{order_id}", "customer_id": customer_id,
             "placed_at": at, "is_return": is_return, "loaded_at": at}
        )  # fmt: skip
        for number, sku in enumerate(skus, 1):
            quantity = -1 if is_return else 1
            self.lines.append(
                {"order_id": order_id, "line_no": number, "sku": sku, "quantity": quantity, "unit_price": 100,
                 "line_total": 100 * quantity}
            )  # fmt: skip
        return order_id

    def flush(self) -> None:
        for table, rows in ((customer_t, self.customers), (order_t, self.orders), (line_t, self.lines)):
            if rows:
                self.conn.execute(table.insert(), rows)
            rows.clear()


def _moment(rng: random.Random, after: datetime, days: float) -> datetime:
    return after + timedelta(seconds=rng.uniform(3600, days * 86400))


def plant(
    conn: sa.Connection,
    rng: random.Random,
    *,
    customers: int = 400,
    plants: Sequence[Plant] = PLANTS,
    merged_share: float = 0.1,
) -> Shop:
    """Write the catalogue and ``customers`` customers' histories (noise plus ``plants``); returns the shop."""
    shop = Shop(conn)
    shop.products()
    noise = [sku for sku in CATALOGUE if sku != BESTSELLER]
    for _ in range(customers):
        person = shop.customer()
        duplicate = shop.customer(merged_into=person) if rng.random() < merged_share else None
        for _ in range(rng.randint(1, 4)):
            basket = rng.sample(noise, rng.randint(1, 2))
            if rng.random() < 0.4:
                basket.append(BESTSELLER)
            shop.order(person, _moment(rng, START, 360), *basket)
        for pattern in plants:
            if rng.random() >= pattern.reach:
                continue
            at = _moment(rng, START, 250)
            shop.order(person, at, pattern.antecedent)
            if rng.random() < pattern.probability:
                shop.order(duplicate or person, _moment(rng, at, pattern.within), pattern.follow_up)
    shop.flush()
    return shop
