"""The demo's catalogue in the Akeneo emulator: what ``hub sandbox`` serves, and the example configuration reads.

The demo's PIM export (``var/demo/pim/products.jsonl`` and ``relations.csv``, or the same catalogue regenerated
from the demo generator's seed) becomes Akeneo data the way a retailer would model it:

- a product group is a **family** (code ``grills``, label "Grills");
- a category label is a **category** under the root ``master`` (``gas_grills``, "Gas grills");
- the brand is an option of the simple select attribute ``brand`` (``nordhjem``, "Nordhjem");
- the price is the ``price`` collection in NOK, ``is_accessory`` the yes/no attribute ``accessory``;
- relations are **associations**: ``accessory`` under ``ACCESSORIES``, ``cross_sell`` under ``X_SELL``,
  ``replacement`` under ``SUBSTITUTION``, in the export's order.

UUIDs are derived from the SKU (UUID 5), so every seeding gives the same UUIDs.
"""

from __future__ import annotations

import csv
import functools
import json
import random
import re
import unicodedata
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from hub_plugins.akeneo._state import AkeneoState, labels

ASSOCIATION_OF = {"accessory": "ACCESSORIES", "cross_sell": "X_SELL", "replacement": "SUBSTITUTION"}
_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss"})  # NFKD leaves these whole
_NAMESPACE = uuidlib.uuid5(uuidlib.NAMESPACE_URL, "https://hub.example/demo/akeneo")


@dataclass(frozen=True, slots=True)
class DemoProduct:
    sku: str
    name: str
    group: str
    category: str
    brand: str
    price: str  # kroner, exact text
    is_accessory: bool
    updated_at: datetime


@functools.lru_cache(maxsize=16_384)
def product_uuid(sku: str) -> str:
    """The UUID the emulator gives a demo SKU."""
    return str(uuidlib.uuid5(_NAMESPACE, sku))


def slug(text: str) -> str:
    """An Akeneo code for a label: ``Glød`` -> ``glod``, ``Gas grills`` -> ``gas_grills``."""
    ascii_text = unicodedata.normalize("NFKD", text.translate(_LETTERS)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "x"


def seed_demo(state: AkeneoState, *, pim_dir: Path | None = None, seed: int = 42) -> int:
    """Replace the emulator's catalogue with the demo's; the number of products.

    ``pim_dir``: read the export there (rows that are not valid JSON are skipped, as the demo plants a few);
    else regenerate the catalogue of ``hub demo-data --seed <seed>`` (the same for any number of customers).
    """
    products, relations = _from_files(pim_dir) if pim_dir is not None else generated_catalogue(seed)
    state.reset_catalogue()
    with state.lock:
        state.families = {}
        state.categories = {"master": _category("master", None, "Master catalogue")}
        brands: dict[str, str] = {}
        for product in products:
            state.families.setdefault(product.group, _family(product.group))
            code = slug(product.category)
            state.categories.setdefault(code, _category(code, "master", product.category))
            brands.setdefault(slug(product.brand), product.brand)
        state.options["brand"] = {
            code: {"code": code, "attribute": "brand", "sort_order": n, "labels": labels(label)}
            for n, (code, label) in enumerate(sorted(brands.items()))
        }
        associations: dict[str, dict[str, dict[str, list[str]]]] = {}
        known = {p.sku for p in products}
        for sku, related, kind in relations:
            association = ASSOCIATION_OF.get(kind)
            if association is None or sku not in known or related not in known:
                continue
            links = associations.setdefault(sku, {}).setdefault(association, {"products": []})
            links["products"].append(product_uuid(related))
        for product in products:
            values = {
                "sku": [_value(product.sku)],
                "name": [_value(product.name, locale) for locale in ("en_US", "nb_NO")],
                "brand": [_value(slug(product.brand))],
                "price": [_value([{"amount": product.price, "currency": "NOK"}])],
                "accessory": [_value(product.is_accessory)],
            }
            data = {
                "family": product.group,
                "categories": [slug(product.category)],
                "values": values,
                "associations": associations.get(product.sku, {}),
            }
            state.add_product(data, updated=product.updated_at, uuid=product_uuid(product.sku), owned=True)
    return len(products)


def generated_catalogue(seed: int) -> tuple[list[DemoProduct], list[tuple[str, str, str]]]:
    from hub_plugins.demo._calendar import DAYS, FIRST_DAY
    from hub_plugins.demo._catalog import make_catalog

    master = random.Random(seed)  # the generator draws the catalogue's seed first, as here
    catalog = make_catalog(random.Random(master.getrandbits(64)), FIRST_DAY, DAYS)
    products = [
        DemoProduct(
            sku=p.sku,
            name=p.name,
            group=p.group,
            category=p.category,
            brand=p.brand,
            price=f"{Decimal(p.price) / 100:.2f}",
            is_accessory=p.is_accessory,
            updated_at=_time(p.updated_at),
        )
        for p in catalog.products
    ]
    return products, list(catalog.relations)


def _from_files(pim_dir: Path) -> tuple[list[DemoProduct], list[tuple[str, str, str]]]:
    products = list(_read_products(pim_dir / "products.jsonl"))
    with (pim_dir / "relations.csv").open(encoding="utf-8-sig", newline="") as handle:
        relations = [(row["sku"], row["related_sku"], row["kind"]) for row in csv.DictReader(handle)]
    return products, relations


def _read_products(path: Path) -> Iterator[DemoProduct]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
                yield DemoProduct(
                    sku=str(row["sku"]),
                    name=str(row["name"]),
                    group=str(row["product_group"]),
                    category=str(row["category"]),
                    brand=str(row["brand"]),
                    price=f"{Decimal(str(row['price'])):.2f}",
                    is_accessory=bool(row["is_accessory"]),
                    updated_at=_time(str(row["updated_at"])),
                )
            except (ValueError, KeyError, TypeError, InvalidOperation):
                continue


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _value(data: object, locale: str | None = None) -> dict[str, object]:
    return {"locale": locale, "scope": None, "data": data}


def _family(group: str) -> dict[str, object]:
    title = group.replace("_", " ").capitalize()
    return {
        "code": group,
        "attribute_as_label": "name",
        "attribute_as_image": None,
        "attributes": ["sku", "name", "brand", "price", "accessory"],
        "attribute_requirements": {},
        "labels": labels(title),
    }


def _category(code: str, parent: str | None, label: str) -> dict[str, object]:
    return {
        "code": code,
        "parent": parent,
        "updated": "2024-01-01T00:00:00+00:00",
        "position": 1,
        "labels": labels(label),
    }
