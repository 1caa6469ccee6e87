"""The demo's ERP in the Odoo emulator: what ``hub sandbox`` serves and the example configuration reads.

The demo's ERP register (``var/demo/erp/customers.csv``) becomes Odoo partners the way a chain on Odoo keeps them: a
private customer (``kundetype`` P) is a person partner with ``ref`` = ``kundenr``; a business (``B``) is a company
partner (``is_company``, ``vat`` = the organisation number) and the person who buys for it is a contact under it
(``parent_id``). ``endret`` (Oslo time) is ``write_date``. Products come from the PIM export beside it
(``default_code`` = SKU), and a quarter of the customers get confirmed sales orders, deterministically.

Without the export, ``count`` synthetic customers (a sixth of them businesses) stand in.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub_plugins.odoo._state import OdooState

OSLO = ZoneInfo("Europe/Oslo")
_FIRST = ("Kari", "Ola", "Ingrid", "Lars", "Nora", "Emil", "Sofie", "Jonas", "Maja", "Henrik", "Ida", "Magnus")
_LAST = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg", "Haugen")
_TRADES = ("Bygg", "Eiendom", "Hage", "Maling", "Snekkeri", "Anlegg")


def demo_csv(root: Path | None = None) -> Path | None:
    """``var/demo/erp/customers.csv`` under ``root`` (the working directory), if ``hub demo-data`` wrote it."""
    path = (root or Path.cwd()) / "var" / "demo" / "erp" / "customers.csv"
    return path if path.is_file() else None


def seed_demo(state: OdooState, *, erp_csv: Path | None = None, count: int = 300, seed: int = 42) -> dict[str, int]:
    """Replace the emulator's data with the demo's partners, products and orders; counts per stream."""
    rng = random.Random(seed)
    people = _read_erp(erp_csv) if erp_csv is not None else _synthetic(rng, count)
    products = _read_products(erp_csv.parent.parent / "pim" / "products.jsonl") if erp_csv is not None else []
    state.reset()
    product_ids = []
    categories: dict[str, int] = {}
    for product in products or _synthetic_products(rng):
        group = str(product["group"]).replace("_", " ").capitalize()
        category = [categories.setdefault(group, len(categories) + 2), f"All / Saleable / {group}"]
        values = {"default_code": product["sku"], "name": product["name"], "list_price": float(product["price"]),
                  "categ_id": category}  # fmt: skip
        product_ids.append((state.create("product.product", values, stamp=product["at"]), float(product["price"])))
    partners = orders = 0
    for person in people:
        stamp = person.pop("at")
        company, vat = person.pop("company"), person.pop("vat")
        if company:
            owner = {**person, "name": company, "is_company": True, "vat": vat or False}
            parent = state.create("res.partner", owner, stamp=stamp)
            buyer = {**person, "parent_id": parent, "customer_rank": 0, "ref": False}
            state.create("res.partner", buyer, stamp=stamp)
            partners += 2
        else:
            parent = state.create("res.partner", person, stamp=stamp)
            partners += 1
        if rng.random() < 0.25:
            for _ in range(rng.randint(1, 2)):
                day = stamp + timedelta(days=rng.randint(1, 200))
                chosen = rng.sample(product_ids, k=min(len(product_ids), rng.randint(1, 3)))
                lines = [
                    {"product_id": p, "product_uom_qty": rng.randint(1, 3), "price_unit": price} for p, price in chosen
                ]
                state.create("sale.order", {"partner_id": parent, "date_order": day, "order_line": lines}, stamp=day)
                orders += 1
    return {"partners": partners, "products": len(product_ids), "orders": orders}


def _read_erp(path: Path) -> list[dict[str, Any]]:
    people = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            text = {name: (value or "").strip() for name, value in row.items() if isinstance(name, str)}
            try:
                changed = datetime.strptime(text.get("endret", ""), "%Y-%m-%d %H:%M:%S").replace(tzinfo=OSLO)
            except ValueError:
                continue  # the demo plants a few broken rows; Odoo would not hold them
            if not text.get("kundenr"):
                continue
            people.append(
                {
                    "name": f"{text.get('fornavn', '')} {text.get('etternavn', '')}".strip() or text["kundenr"],
                    "ref": text["kundenr"], "email": text.get("epost") or False, "phone": text.get("mobil") or False,
                    "street": text.get("adresse") or False, "zip": text.get("postnr") or False,
                    "city": text.get("sted") or False, "country_code": text.get("land") or "NO",
                    "company": text.get("bedrift", "") if text.get("kundetype", "").upper() == "B" else "",
                    "vat": text.get("orgnr", ""), "at": changed.astimezone(UTC).replace(tzinfo=None),
                }
            )  # fmt: skip
    return people


def _read_products(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    products = []
    with path.open(encoding="utf-8") as handle:
        for text in handle:
            try:
                row = json.loads(text)
                moment = datetime.fromisoformat(str(row["updated_at"]).replace("Z", "+00:00"))
                float(row["price"])
                products.append(
                    {
                        "sku": row["sku"],
                        "name": row["name"],
                        "price": row["price"],
                        "group": row["product_group"],
                        "at": moment.replace(tzinfo=None),
                    }
                )
            except (ValueError, KeyError, TypeError):
                continue
    return products


def _synthetic(rng: random.Random, count: int) -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, 8)
    people = []
    for n in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company = f"{last} {rng.choice(_TRADES)} AS" if n % 6 == 0 else ""
        people.append(
            {
                "name": f"{first} {last}", "ref": str(100001 + n), "email": f"{first}.{last}{n}@epost.no".lower(),
                "phone": f"9{rng.randint(1000000, 9999999)}", "street": f"Storgata {n % 90 + 1}", "zip": "0155",
                "city": "Oslo", "country_code": "NO", "company": company, "vat": str(900000000 + n) if company else "",
                "at": start + timedelta(hours=7 * n),
            }
        )  # fmt: skip
    return people


def _synthetic_products(rng: random.Random) -> list[dict[str, Any]]:
    at, groups = datetime(2024, 6, 1, 9), ("grills", "paint", "tools")
    return [
        {
            "sku": f"VARE-{n:04d}",
            "name": f"Vare {n}",
            "price": f"{rng.randint(49, 4999)}.00",
            "group": groups[n % 3],
            "at": at,
        }
        for n in range(1, 41)
    ]
