"""The demo's ERP in the Business Central emulator: what ``hub sandbox`` serves and the example configuration reads.

The demo's ERP register (``var/demo/erp/customers.csv`` from ``hub demo-data``) becomes BC data the way a chain on
BC keeps it: a private customer (``kundetype`` P) is a ``Person`` customer numbered by ``kundenr``; a business
(``B``) is a ``Company`` customer named ``bedrift`` with its organisation number, plus its company contact and the
person who buys for it as a ``Person`` contact of that company (``companyNumber``, ``companyName``). ``endret``
(Oslo time) is the change time. Items come from the PIM export beside it (``pim/products.jsonl``), and each business
gets a few posted invoices, some with a credit memo, deterministically from ``seed``.

Without the export, ``count`` synthetic customers (a sixth of them businesses) stand in, so the emulator is
never empty in the sandbox.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub_plugins.business_central._state import BcState, now_utc

OSLO = ZoneInfo("Europe/Oslo")
_FIRST = ("Kari", "Ola", "Ingrid", "Lars", "Nora", "Emil", "Sofie", "Jonas", "Maja", "Henrik", "Ida", "Magnus")
_LAST = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg", "Haugen")
_CITIES = (("Oslo", "0155"), ("Bergen", "5003"), ("Trondheim", "7010"), ("Stavanger", "4006"), ("Tromsø", "9008"))
_TRADES = ("Bygg", "Eiendom", "Hage", "Maling", "Snekkeri", "Anlegg")


@dataclass(frozen=True, slots=True)
class Person:
    number: str
    first: str
    last: str
    email: str
    phone: str
    street: str
    postcode: str
    city: str
    country: str
    company: str  # blank: a private customer
    org_no: str
    changed: datetime


def demo_csv(root: Path | None = None) -> Path | None:
    """``var/demo/erp/customers.csv`` under ``root`` (the working directory), if ``hub demo-data`` wrote it."""
    path = (root or Path.cwd()) / "var" / "demo" / "erp" / "customers.csv"
    return path if path.is_file() else None


def seed_demo(state: BcState, *, erp_csv: Path | None = None, count: int = 300, seed: int = 42) -> dict[str, int]:
    """Fill the first company with the demo's customers, contacts, items, invoices and credit memos; counts."""
    rng = random.Random(seed)
    people = list(_read_erp(erp_csv)) if erp_csv is not None else list(_synthetic(rng, count))
    products = _read_products(erp_csv.parent.parent / "pim" / "products.jsonl") if erp_csv is not None else []
    state.reset()
    items = _items(state, products or _synthetic_products(rng))
    contacts = 0
    businesses: list[tuple[Person, str]] = []
    for person in people:
        name = f"{person.first} {person.last}".strip()
        address = {
            "addressLine1": person.street, "city": person.city, "postalCode": person.postcode,
            "country": person.country or "NO", "phoneNumber": person.phone, "email": person.email,
        }  # fmt: skip
        if not person.company:
            state.add(
                "customers",
                {"number": person.number, "displayName": name, "type": "Person", **address},
                modified=person.changed,
            )
            continue
        customer = {"number": person.number, "displayName": person.company, "type": "Company", **address}
        customer_id = state.add(
            "customers", {**customer, "taxRegistrationNumber": person.org_no}, modified=person.changed
        )
        company_contact = f"CT{person.number}"
        state.add(
            "contacts",
            {
                "number": company_contact,
                "type": "Company",
                "displayName": person.company,
                "companyNumber": company_contact,
                "companyName": person.company,
                **address,
            },
            modified=person.changed,
        )
        state.add(
            "contacts",
            {
                "number": f"CT{person.number}-1",
                "type": "Person",
                "displayName": name,
                "companyNumber": company_contact,
                "companyName": person.company,
                "jobTitle": "Innkjøper",
                **address,
            },
            modified=person.changed,
        )
        contacts += 2
        businesses.append((person, customer_id))
    invoices, memos = _documents(state, rng, businesses, items)
    return {
        "customers": len(people),
        "contacts": contacts,
        "items": len(items),
        "salesInvoices": invoices,
        "salesCreditMemos": memos,
    }


def _items(state: BcState, products: list[dict[str, Any]]) -> list[tuple[str, float, str]]:
    made = []
    for product in products:
        price = float(product["price"])
        fields = {
            "number": product["sku"], "displayName": product["name"], "itemCategoryCode": str(product["product_group"]).upper()[:20],  # noqa: E501
            "unitPrice": price, "unitCost": round(price * 0.55, 2), "inventory": 12,
        }  # fmt: skip
        state.add("items", fields, modified=_utc(product["updated_at"]))
        made.append((product["sku"], price, product["name"]))
    return made


def _documents(
    state: BcState, rng: random.Random, businesses: list[tuple[Person, str]], items: list[tuple[str, float, str]]
) -> tuple[int, int]:
    invoices = memos = 0
    end = now_utc().replace(hour=12, minute=0, second=0, microsecond=0)
    for person, _ in businesses:
        for _ in range(rng.randint(1, 3)):
            day = end - timedelta(days=rng.randint(1, 600))
            chosen = rng.sample(items, k=min(len(items), rng.randint(1, 4)))
            lines = [
                {"lineObjectNumber": sku, "description": name, "quantity": rng.randint(1, 5), "unitPrice": price}
                for sku, price, name in chosen
            ]
            stamp = day.date().isoformat()
            invoice = state.add(
                "salesInvoices",
                {
                    "customerNumber": person.number,
                    "invoiceDate": stamp,
                    "postingDate": stamp,
                    "dueDate": (day + timedelta(days=14)).date().isoformat(),
                    "status": "Paid",
                    "salesInvoiceLines": lines,
                },
                modified=day + timedelta(hours=2),
            )
            invoices += 1
            if rng.random() < 0.15:
                back = day + timedelta(days=rng.randint(2, 20))
                number = state.first.tables["salesInvoices"][invoice].data["number"]
                state.add(
                    "salesCreditMemos",
                    {
                        "customerNumber": person.number,
                        "creditMemoDate": back.date().isoformat(),
                        "postingDate": back.date().isoformat(),
                        "invoiceId": invoice,
                        "invoiceNumber": number,
                        "status": "Paid",
                        "salesCreditMemoLines": lines[:1],
                    },
                    modified=back + timedelta(hours=1),
                )
                memos += 1
    return invoices, memos


def _read_erp(path: Path) -> list[Person]:
    people = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            number = (row.get("kundenr") or "").strip()
            try:
                changed = datetime.strptime((row.get("endret") or "").strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=OSLO)
            except ValueError:
                continue  # the demo plants a few broken rows; BC would not hold them
            if not number:
                continue
            business = (row.get("kundetype") or "").strip().upper() == "B"
            text = {name: (value or "").strip() for name, value in row.items() if isinstance(name, str)}
            people.append(
                Person(
                    number, text.get("fornavn", ""), text.get("etternavn", ""), text.get("epost", ""),
                    text.get("mobil", ""), text.get("adresse", ""), text.get("postnr", ""), text.get("sted", ""),
                    text.get("land") or "NO", text.get("bedrift", "") if business else "", text.get("orgnr", ""),
                    changed.astimezone(UTC),
                )
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
                float(row["price"])
                products.append({k: row[k] for k in ("sku", "name", "product_group", "price", "updated_at")})
            except (ValueError, KeyError, TypeError):
                continue
    return products


def _synthetic(rng: random.Random, count: int) -> list[Person]:
    start = datetime(2024, 1, 1, 8, tzinfo=UTC)
    people = []
    for n in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, postcode = rng.choice(_CITIES)
        company = f"{last} {rng.choice(_TRADES)} AS" if n % 6 == 0 else ""
        email = f"{first}.{last}{n}@{'firma' if company else 'epost'}.no".lower()
        people.append(
            Person(
                str(100001 + n), first, last, email, f"9{rng.randint(1000000, 9999999)}", f"Storgata {n % 90 + 1}",
                postcode, city, "NO", company, str(900000000 + n) if company else "", start + timedelta(hours=7 * n),
            )
        )  # fmt: skip
    return people


def _synthetic_products(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "sku": f"VARE-{n:04d}",
            "name": f"Vare {n}",
            "product_group": rng.choice(("grills", "paint", "tools")),
            "price": f"{rng.randint(49, 4999)}.00",
            "updated_at": "2024-06-01T09:00:00Z",
        }
        for n in range(1, 41)
    ]


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
