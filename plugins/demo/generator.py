"""The demo data set: a Norwegian home-and-garden chain's web shop, tills (POS), ERP and PIM exports.

``generate`` writes, for a number of people (the truth), what each of the chain's systems knows about them::

    pim/stores.csv  pim/products.jsonl  pim/relations.csv     master data (fixed size)
    erp/customers.csv                                         the ERP customer register (semicolon-separated)
    webshop/orders-YYYY-MM.jsonl                              Shopify-like orders, one file per month
    webshop/carts.jsonl  webshop/events.jsonl                 carts; e-mail and loyalty events (see _audience)
    pos/receipts-YYYY-MM.csv                                  receipt lines, one file per month
    manifest.json                                             what was written, and what hub should make of it

Each person is known to one to three systems, which spell the same email and phone differently and share
member numbers; some people link only through a chain of systems, others not at all. About 0.5 % of the rows
are malformed, and placeholder identifiers (``noreply@shop.no``, member ``0``, phone ``00000000``) must never
identify anyone. The manifest says how many customers perfect merging ends with, computed from the truth.

The output is a function of ``customers`` and ``seed`` only (byte for byte), and memory does not grow with
``customers``: people are generated one at a time and monthly files are sorted by external merge.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from hub_plugins.demo._audience import Audience
from hub_plugins.demo._calendar import DAYS, FIRST_DAY, MONTHS, Calendar
from hub_plugins.demo._catalog import Catalog, make_catalog
from hub_plugins.demo._people import People
from hub_plugins.demo._sorted import MonthlyFiles
from hub_plugins.demo._sources import (
    ERP_COLUMNS,
    POS_COLUMNS,
    POS_KEY_WIDTH,
    WEB_KEY_WIDTH,
    Key,
    Systems,
    Tally,
    money,
)

MANIFEST = "manifest.json"
ANONYMOUS_RECEIPTS_PER_PERSON = 0.4  # walk-in customers without a loyalty card
SPILL_BYTES = 2 << 20  # rows each monthly file set holds in memory before it spills a sorted run to disk


@dataclass(slots=True)
class Manifest:
    """What ``generate`` wrote, and the figures a correct hub must reproduce from it.

    ``expected_customers`` is the number of golden customers after perfect merging: per person, the connected
    components of the identity keys their well-formed records carry (an external id per system, email,
    phone, member number; placeholders excluded). It can exceed ``persons`` (a person whose systems share no
    key stays split) or fall short (a person whose only records were malformed or carried placeholders only).
    Identifiers are unique to their person by construction, so no component spans two people.
    """

    seed: int
    persons: int
    expected_customers: int
    persons_split: int  # people whose records cannot be linked into one customer
    persons_unseen: int  # people with no surviving identity key at all
    files: dict[str, int]  # path relative to the output directory -> records (header rows excluded)
    streams: dict[str, int]  # connector.stream -> records, as the shipped config names them
    rejects: dict[str, int]  # connector.stream -> malformed records hub must set aside
    malformed: dict[str, int]  # kind -> rows
    placeholders: dict[str, int]  # identifier kind -> records (rows, orders) carrying its placeholder
    orders: dict[str, int] = field(default_factory=dict)  # web orders, receipts, returns, lines, refunds
    audience: dict[str, int] = field(default_factory=dict)  # carts, events by type, orders with a campaign

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read ``manifest.json`` (or the manifest inside the directory ``path``)."""
        if path.is_dir():
            path = path / MANIFEST
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def generate(out_dir: Path, *, customers: int = 10_000, seed: int = 42) -> Manifest:
    """Write the demo data set for ``customers`` people into ``out_dir``; return (and write) its manifest."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    master = random.Random(seed)
    # Each part draws from its own stream, so a change in one part does not reshuffle the others.
    catalog = make_catalog(random.Random(master.getrandbits(64)), FIRST_DAY, DAYS)
    people = People(customers, random.Random(master.getrandbits(64)))
    events = random.Random(master.getrandbits(64))
    extras = random.Random(master.getrandbits(64))  # carts, events and campaigns: drawn last, they change nothing else
    files = _write_master_data(out_dir, catalog)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".demo-") as scratch:
        web = MonthlyFiles(
            out_dir / "webshop",
            prefix="orders-",
            suffix=".jsonl",
            months=MONTHS,
            key_width=WEB_KEY_WIDTH,
            scratch=Path(scratch),
            budget=SPILL_BYTES,
        )
        pos = MonthlyFiles(
            out_dir / "pos",
            prefix="receipts-",
            suffix=".csv",
            months=MONTHS,
            key_width=POS_KEY_WIDTH,
            scratch=Path(scratch),
            header=",".join(POS_COLUMNS) + "\n",
            budget=SPILL_BYTES,
        )
        calendar, tally = Calendar(), Tally()
        audience = Audience(
            extras, catalog, calendar, tally, out=out_dir / "webshop", scratch=Path(scratch), budget=SPILL_BYTES
        )
        systems = Systems(events, catalog, calendar, web=web, pos=pos, tally=tally, tag_order=audience.tag_order)
        truth = _write_people(out_dir / "erp" / "customers.csv", people, systems, audience, customers)
        files["erp/customers.csv"] = truth.erp_rows
        files.update({f"webshop/{name}": n for name, n in web.close().items()})
        files.update({f"webshop/{name}": n for name, n in audience.close().items()})
        files.update({f"pos/{name}": n for name, n in pos.close().items()})
    tally = systems.tally
    manifest = Manifest(
        seed=seed,
        persons=customers,
        expected_customers=truth.customers,
        persons_split=truth.split,
        persons_unseen=truth.unseen,
        files=files,
        streams={
            "webshop.orders": sum(n for f, n in files.items() if f.startswith("webshop/orders-")),
            "webshop.carts": files["webshop/carts.jsonl"],
            "webshop.events": files["webshop/events.jsonl"],
            "pos.receipts": sum(n for f, n in files.items() if f.startswith("pos/")),
            "erp.customers": truth.erp_rows,
            "pim.products": files["pim/products.jsonl"],
            "pim.relations": files["pim/relations.csv"],
            "pim.stores": files["pim/stores.csv"],
        },
        rejects=dict(sorted(tally.rejects.items())),
        malformed=dict(sorted(tally.malformed.items())),
        placeholders=dict(sorted(tally.placeholders.items())),
        orders=dict(sorted(tally.orders.items())),
        audience=dict(sorted(audience.figures.items())),
    )
    (out_dir / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


@dataclass(slots=True)
class _Truth:
    customers: int = 0  # after perfect merging
    split: int = 0
    unseen: int = 0
    erp_rows: int = 0


def _write_people(erp_path: Path, people: People, systems: Systems, audience: Audience, count: int) -> _Truth:
    """Every person's orders, ERP row, carts and events, one person at a time; the customers their keys make."""
    truth = _Truth()
    rng = systems.rng
    walk_in = ANONYMOUS_RECEIPTS_PER_PERSON / (1 + ANONYMOUS_RECEIPTS_PER_PERSON)  # geometric, that mean
    erp_path.parent.mkdir(exist_ok=True)
    # utf-8-sig and CRLF: a byte-order mark and Windows line ends, as Nordic ERP exports come.
    with erp_path.open("w", encoding="utf-8-sig", newline="") as erp_file:
        erp = csv.writer(erp_file, delimiter=";", lineterminator="\r\n")
        erp.writerow(ERP_COLUMNS)
        for i in range(count):
            person = people.make(i)
            links: set[tuple[Key, ...]] = set()
            shop = systems.shop_identity(person)
            systems.orders(person, shop, links)
            if person.in_erp:
                erp.writerow(systems.erp_row(person, shop, links))
                truth.erp_rows += 1
            audience.person(person, shop, systems.placed, links)
            merged = count_components(links)
            truth.customers += merged
            truth.split += merged > 1
            truth.unseen += merged == 0
            while rng.random() < walk_in:
                systems.anonymous_receipt()
    return truth


def count_components(records: Iterable[tuple[Key, ...]]) -> int:
    """Customers that records become when each record's keys are one customer and shared keys merge them."""
    parent: dict[Key, Key] = {}

    def find(key: Key) -> Key:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for keys in records:
        for key in keys:
            parent.setdefault(key, key)
        root = find(keys[0])
        for key in keys[1:]:
            other = find(key)
            if other != root:
                parent[other] = root
    return sum(1 for key, up in parent.items() if key == up)


def _write_master_data(out_dir: Path, catalog: Catalog) -> dict[str, int]:
    pim = out_dir / "pim"
    pim.mkdir(exist_ok=True)
    with (pim / "stores.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("store_id", "name", "city", "region", "country", "opened_at"))
        for s in catalog.stores:
            writer.writerow((s.store_id, s.name, s.city.name, s.city.region, "NO", s.opened_at.isoformat()))
    with (pim / "products.jsonl").open("wb") as f:
        for p in catalog.products:
            f.write(
                orjson.dumps(
                    {
                        "sku": p.sku,
                        "name": p.name,
                        "product_group": p.group,
                        "category": p.category,
                        "brand": p.brand,
                        "price": money(p.price),
                        "is_accessory": p.is_accessory,
                        "updated_at": p.updated_at,
                    }
                )
                + b"\n"
            )
    with (pim / "relations.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("sku", "related_sku", "kind"))
        writer.writerows(catalog.relations)
    return {
        "pim/stores.csv": len(catalog.stores),
        "pim/products.jsonl": len(catalog.products),
        "pim/relations.csv": len(catalog.relations),
    }
