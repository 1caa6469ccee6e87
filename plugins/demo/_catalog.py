"""The chain's master data: stores, products and product relations, the same size for any number of people."""

from __future__ import annotations

import math
import random
from bisect import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Generic, TypeVar

from hub_plugins.demo._vocab import CHAIN, CITIES, FALLBACK_DISTRICTS, GROUPS, MODEL_WORDS, City, Kind

T = TypeVar("T")

STORES = 160
PRODUCTS = 3000
MAIN_SHARE = 0.55  # of a group's products; the rest are its accessories


class Weighted(Generic[T]):
    """Items drawn by weight in O(log n): the cumulative weights are computed once."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, items: list[T], weights: list[float]) -> None:
        self._items = items
        self._cum = list(accumulate(weights))
        self._total = self._cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self._items[bisect(self._cum, rng.random() * self._total)]


@dataclass(frozen=True, slots=True)
class Store:
    store_id: str
    name: str
    city: City
    opened_at: date
    registers: int


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    group: str
    category: str
    brand: str
    price: int  # øre
    is_accessory: bool
    updated_at: str  # ISO 8601, UTC


@dataclass(slots=True)
class Catalog:
    """Everything an order needs to pick stores and products, plus the rows of the PIM files."""

    stores: list[Store]
    store_pick: Weighted[Store]
    stores_in: dict[str, list[Store]]  # city name -> its stores
    products: list[Product]
    main_pick: dict[str, Weighted[Product]]  # group -> main products by popularity
    accessory_pick: dict[str, Weighted[Product]]  # group -> accessories by popularity
    accessories_of: dict[str, list[Product]]  # main product's sku -> its related accessories
    relations: list[tuple[str, str, str]]  # (sku, related_sku, kind)


def make_catalog(rng: random.Random, first_day: date, days: int) -> Catalog:
    stores = _make_stores(rng)
    products, main_pick, accessory_pick = _make_products(rng, first_day, days)
    accessories_of, relations = _make_relations(rng, products, main_pick)
    stores_in: dict[str, list[Store]] = {}
    for store in stores:
        stores_in.setdefault(store.city.name, []).append(store)
    return Catalog(
        stores=stores,
        store_pick=Weighted(stores, [s.city.weight / len(stores_in.get(s.city.name, [s])) for s in stores]),
        stores_in=stores_in,
        products=products,
        main_pick=main_pick,
        accessory_pick=accessory_pick,
        accessories_of=accessories_of,
        relations=relations,
    )


def _store_counts() -> list[int]:
    """One store in every city, the rest by population (largest remainder), 160 in all."""
    counts = [1] * len(CITIES)
    left = STORES - len(counts)
    total = sum(c.weight for c in CITIES)
    shares = [left * c.weight / total for c in CITIES]
    extra = [math.floor(s) for s in shares]
    order = sorted(range(len(CITIES)), key=lambda i: shares[i] - extra[i], reverse=True)
    for i in order[: left - sum(extra)]:
        extra[i] += 1
    return [c + e for c, e in zip(counts, extra, strict=True)]


def _make_stores(rng: random.Random) -> list[Store]:
    stores: list[Store] = []
    for city, count in zip(CITIES, _store_counts(), strict=True):
        districts = (*city.districts, *FALLBACK_DISTRICTS)
        for n in range(count):
            if count == 1:
                name = f"{CHAIN} {city.name}"
            elif n < len(districts):
                name = f"{CHAIN} {city.name} {districts[n]}"
            else:
                name = f"{CHAIN} {city.name} {n + 1}"
            opened = date(1978, 1, 1) + timedelta(days=rng.randrange(365 * 44))
            registers = rng.randint(2, 4) + (city.weight >= 8) * rng.randint(1, 4)
            stores.append(Store(f"S{len(stores) + 1:03d}", name, city, opened, registers))
    return stores


def _price(rng: random.Random, kind: Kind) -> int:
    """Log-uniform in the kind's range, rounded the way shops round (499, 1 299, 12 990), in øre."""
    kroner = math.exp(rng.uniform(math.log(kind.low), math.log(kind.high)))
    step = 100 if kroner >= 2000 else 10
    return max(kind.low, round(kroner / step) * step - (1 if step == 10 else 10)) * 100


def _make_products(
    rng: random.Random, first_day: date, days: int
) -> tuple[list[Product], dict[str, Weighted[Product]], dict[str, Weighted[Product]]]:
    products: list[Product] = []
    main_pick: dict[str, Weighted[Product]] = {}
    accessory_pick: dict[str, Weighted[Product]] = {}
    total_weight = sum(g.weight for g in GROUPS.values())
    for group_name, group in GROUPS.items():
        count = round(PRODUCTS * group.weight / total_weight)
        picks: dict[bool, tuple[list[Product], list[float]]] = {False: ([], []), True: ([], [])}
        for n in range(count):
            is_accessory = n >= count * MAIN_SHARE
            kind = rng.choice(group.accessories if is_accessory else group.main)
            brand = rng.choice(group.brands)
            model = f"{rng.choice(MODEL_WORDS)} {rng.randint(1, 9)}{rng.choice(('00', '10', '20', '50', '80'))}"
            moment = datetime(first_day.year, first_day.month, first_day.day) + timedelta(
                days=rng.randrange(days), seconds=rng.randrange(6 * 3600, 20 * 3600)
            )
            product = Product(
                sku=f"{group.code}-{n + 1:05d}",
                name=f"{brand} {kind.name} {model}",
                group=group_name,
                category=kind.category,
                brand=brand,
                price=_price(rng, kind),
                is_accessory=is_accessory,
                updated_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            products.append(product)
            items, weights = picks[is_accessory]
            items.append(product)
            weights.append(min(rng.paretovariate(1.2), 50.0))  # a few best sellers, a long tail
        main_pick[group_name] = Weighted(*picks[False])
        accessory_pick[group_name] = Weighted(*picks[True])
    return products, main_pick, accessory_pick


def _make_relations(
    rng: random.Random, products: list[Product], main_pick: dict[str, Weighted[Product]]
) -> tuple[dict[str, list[Product]], list[tuple[str, str, str]]]:
    """Every main product gets 3-6 accessories of its group (its own brand first) and 1-2 cross-sells."""
    accessories: dict[str, list[Product]] = {}
    by_brand: dict[tuple[str, str], list[Product]] = {}
    for p in products:
        if p.is_accessory:
            accessories.setdefault(p.group, []).append(p)
            by_brand.setdefault((p.group, p.brand), []).append(p)
    accessories_of: dict[str, list[Product]] = {}
    relations: list[tuple[str, str, str]] = []
    for p in products:
        if p.is_accessory:
            continue
        own_brand = by_brand.get((p.group, p.brand), [])
        chosen = rng.sample(own_brand, min(len(own_brand), 2))
        taken = {a.sku for a in chosen}
        others = [a for a in accessories[p.group] if a.sku not in taken]
        chosen += rng.sample(others, min(len(others), rng.randint(3, 6) - len(chosen)))
        accessories_of[p.sku] = chosen
        relations.extend((p.sku, a.sku, "accessory") for a in chosen)
        for group in rng.sample(GROUPS[p.group].cross_sell, rng.randint(1, 2)):
            relations.append((p.sku, main_pick[group].pick(rng).sku, "cross_sell"))
    return accessories_of, relations
