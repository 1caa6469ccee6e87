"""The demo's web shop in the Shopify emulator: what ``hub sandbox`` serves and config/examples/shopify.yaml reads.

``hub demo-data`` writes the web shop as exports (Shopify-like orders, one file a month; carts; the PIM's
catalogue). :func:`seed_demo` turns the same data set into the shop a retailer on Shopify would have:

- **customers**: Shopify keeps one customer per e-mail, guests included. A customer id that a well-formed order
  or signed-in cart carries is an account (``state: enabled``) with the e-mail, phone (E.164, as Shopify stores
  it) and names those carry; a guest's order or cart belongs to the account of its e-mail, else to a customer of
  its own (``disabled``: no account). ``accepts_marketing`` becomes ``email_marketing_consent``: ``subscribed`` or
  ``unsubscribed`` at ``accepts_marketing_updated_at`` (the sign-up), as the demo's mapping reads the export;
  someone never asked is ``not_subscribed``. Created at sign-up, or when first seen; updated at the last order or
  cart. The placeholder ``noreply@shop.no`` names nobody: its orders have no customer.
- **orders**: each order with its lines, discount codes and refunds, its e-mail and phone. (The newsletter's UTM
  campaign, which the export keeps in ``note_attributes``, has no field in the schema subset the emulator serves.)
- **products**: one per PIM product, with one variant (its SKU and price); product type = product group,
  vendor = brand, tags = [category]. **inventory**: one item per variant, its stock in the web warehouse.
- **checkouts**: every cart as an abandoned checkout; a converted cart is completed (``completed_at``).

Rows the export planted as malformed: a line that is not JSON is left out (an export that died mid-line is
not shop data); an order or cart with an impossible date or a broken e-mail is *served malformed* (its
``updatedAt`` is no timestamp), so hub files it as a reject as it does the export's row. The unified customers,
orders and carts a sync makes are then those the web shop's files make (tested in
tests/plugins/shopify/test_demo_seed.py); refunds differ in form only: Shopify's become return orders.

The data set is a demo directory (``hub demo-data --out DIR``), or is regenerated in a temporary directory from
``customers`` and ``seed``: by default ``hub demo-data``'s own (10,000 people, seed 42), so the shop holds the
same people as var/demo's ERP and POS files. Files are read a line at a time.
"""

from __future__ import annotations

import itertools
import random
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox import Emulator
from hub_plugins.shopify import emulator
from hub_plugins.shopify._state import STREAMS, ShopState

DEMO_CUSTOMERS = 10_000  # hub demo-data's defaults
DEMO_SEED = 42
WAREHOUSE = (70001, "Nettlager Oslo")  # the web shop's one stock location
OUT_OF_STOCK = 0.08
DIAL_PREFIX = "+47"  # the shop's country: Norway
PLACEHOLDER_EMAIL = "noreply@shop.no"  # what the demo's web shop types for a guest who gives no address
GUEST_IDS = 6_200_000_000_001  # customer ids Shopify gives guests (the export's account ids are below)

Record = dict[str, Any]


def seed_demo(
    state: ShopState, *, demo_dir: Path | None = None, customers: int = DEMO_CUSTOMERS, seed: int = DEMO_SEED
) -> dict[str, int]:
    """Replace the shop's records with the demo's web shop; records per stream, and rows left out (``skipped``).

    ``demo_dir``: read that data set (``hub demo-data --out``); else generate one for ``customers`` and ``seed``.
    """
    if demo_dir is not None:
        return _seed_from(state, Path(demo_dir))
    from hub_plugins.demo.generator import generate  # only the sandbox needs the generator

    with tempfile.TemporaryDirectory(prefix="hub-shopify-demo-") as scratch:
        generate(Path(scratch), customers=customers, seed=seed)
        return _seed_from(state, Path(scratch))


def _seed_from(state: ShopState, directory: Path) -> dict[str, int]:
    for needed in ("pim/products.jsonl", "webshop/carts.jsonl"):
        if not (directory / needed).is_file():
            raise FileNotFoundError(f"{directory} is not a demo data set: {needed} is missing (hub demo-data --out)")
    shop = _Shop(state)
    shop.catalogue(_lines(directory / "pim" / "products.jsonl"))
    for path in sorted((directory / "webshop").glob("orders-*.jsonl")):
        for row in _lines(path):
            shop.order(row)
    for row in _lines(directory / "webshop" / "carts.jsonl"):
        shop.checkout(row)
    shop.install()
    return {**{stream: len(records) for stream, records in shop.records.items()}, "skipped": shop.skipped}


def _lines(path: Path) -> Iterator[Record | None]:
    """Each line's object, or None for a line that is not a JSON object (the demo plants a few)."""
    with path.open("rb") as handle:
        for line in handle:
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield None
                continue
            yield row if isinstance(row, dict) else None


def _time(value: Any) -> datetime:
    """An export's ISO 8601 time as Shopify keeps it: UTC, whole seconds. ValueError for anything else."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def _good_email(value: Any) -> bool:
    """No address (a guest who gave none), or one with a single @ (the demo breaks some into ``a@@b``)."""
    return value is None or (isinstance(value, str) and value.count("@") == 1)


def _e164(phone: Any) -> str | None:
    """A phone as Shopify stores it (E.164): ``+47 912 34 567`` and ``91234567`` -> ``+4791234567``."""
    if not isinstance(phone, str) or not phone.strip():
        return None
    digits = re.sub(r"[^0-9+]", "", phone)
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits if digits.startswith("+") else DIAL_PREFIX + digits


@dataclass(slots=True)
class _Person:
    """A Shopify customer as the well-formed records that name them describe them."""

    account: bool = False  # signed up (state enabled); else a guest's customer record (disabled)
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    accepts_marketing: bool | None = None
    marketing_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def learn(self, customer: Record, *moments: datetime, order: bool) -> None:
        """What one record says: a cart only its e-mail, an order also the phone, names and marketing choice."""
        self.email = self.email or customer.get("email")
        if order:
            self.phone = _e164(customer.get("phone")) or self.phone
            self.first_name = customer.get("first_name") or self.first_name
            self.last_name = customer.get("last_name") or self.last_name
            at = customer.get("accepts_marketing_updated_at")
            if isinstance(customer.get("accepts_marketing"), bool) and isinstance(at, str):
                self.accepts_marketing, self.marketing_at = customer["accepts_marketing"], _time(at)
        for moment in moments:
            self.first_seen = moment if self.first_seen is None else min(self.first_seen, moment)
            self.last_seen = moment if self.last_seen is None else max(self.last_seen, moment)

    def absorb(self, guest: _Person) -> None:
        """The guest checkouts of someone who also has an account: Shopify keeps one customer per e-mail."""
        self.phone = self.phone or guest.phone
        self.first_name, self.last_name = self.first_name or guest.first_name, self.last_name or guest.last_name
        for moment in (guest.first_seen, guest.last_seen):
            if moment is not None:
                self.learn({}, moment, order=False)

    def record(self, shop_id: int) -> Record:
        created = min(m for m in (self.marketing_at, self.first_seen) if m is not None)
        asked = self.accepts_marketing is not None
        state = ("subscribed" if self.accepts_marketing else "unsubscribed") if asked else "not_subscribed"
        sms = {"state": "not_subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": None}
        return {
            "id": shop_id,
            "email": self.email,
            "phone": self.phone,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "state": "enabled" if self.account else "disabled",
            "tags": [],
            "locale": "nb",
            "email_marketing_consent": {
                "state": state,
                "opt_in_level": "single_opt_in",
                "consent_updated_at": self.marketing_at if asked else None,
            },
            "sms_marketing_consent": None if self.phone is None else {**sms, "consent_collected_from": "other"},
            "default_address": None,
            "created_at": created,
            "updated_at": max(created, self.last_seen or created),
        }


@dataclass(slots=True)
class _Shop:
    """The shop being built, installed into the state at the end in one step (under its lock)."""

    state: ShopState
    records: dict[str, dict[int, Record]] = field(default_factory=lambda: {s: {} for s in STREAMS})
    malformed: set[tuple[str, int]] = field(default_factory=set)
    accounts: dict[int, _Person] = field(default_factory=dict)  # by the export's customer id
    account_of: dict[str, int] = field(default_factory=dict)  # lower-case e-mail -> customer id
    guests: dict[str, _Person] = field(default_factory=dict)  # by lower-case e-mail
    waiting: list[tuple[str, int, str]] = field(default_factory=list)  # (stream, record id, guest's e-mail)
    variants: dict[str, tuple[int, int]] = field(default_factory=dict)  # sku -> (variant id, product id)
    skipped: int = 0

    def catalogue(self, rows: Iterator[Record | None]) -> None:
        stock = random.Random(7)
        for row in rows:
            try:
                if row is None:
                    raise ValueError("not JSON")
                sku, name, updated = str(row["sku"]), str(row["name"]), _time(row["updated_at"])
                price = f"{Decimal(str(row['price'])):.2f}"
                group, brand, category = (str(row[k]) for k in ("product_group", "brand", "category"))
            except (TypeError, KeyError, ValueError, ArithmeticError):
                self.skipped += 1  # as the demo's PIM mapping does: a row that does not parse is not a product
                continue
            product_id, variant_id, item_id = (self.state.next_id() for _ in range(3))
            self.variants[sku] = (variant_id, product_id)
            variant = {
                "id": variant_id,
                "sku": sku,
                "title": "Default Title",
                "price": price,
                "barcode": None,
                "inventory_item_id": item_id,
                "updated_at": updated,
            }
            self.records["products"][product_id] = {
                "id": product_id,
                "title": name,
                "handle": sku.lower(),
                "product_type": group,
                "vendor": brand,
                "tags": [category],
                "status": "active",
                "variants": [variant],
                "created_at": updated,
                "updated_at": updated,
            }
            level = {
                "id": self.state.next_id(),
                "location_id": WAREHOUSE[0],
                "location_name": WAREHOUSE[1],
                "available": 0 if stock.random() < OUT_OF_STOCK else stock.randint(1, 60),
                "updated_at": updated,
            }
            self.records["inventory"][item_id] = {
                "id": item_id,
                "sku": sku,
                "variant_id": variant_id,
                "levels": [level],
                "created_at": updated,
                "updated_at": updated,
            }

    def order(self, row: Record | None) -> None:
        parsed = self._parsed(row, "updated_at", "created_at")
        if parsed is None:
            return
        row, customer, updated, created, good = parsed
        try:
            record = {
                "id": row["id"],
                "name": row.get("name"),
                "email": customer.get("email"),
                "phone": _e164(customer.get("phone")),
                "customer_id": customer.get("id") if isinstance(customer.get("id"), int) else None,
                "created_at": created,
                "updated_at": updated,
                "processed_at": created,
                "cancelled_at": None,
                "currency": row.get("currency") or "NOK",
                "financial_status": row.get("financial_status"),
                "total_price": row.get("total_price"),
                "current_total_price": row.get("current_total_price") or row.get("total_price"),
                "total_discounts": row.get("total_discounts") or "0.00",
                "discount_codes": [str(code["code"]) for code in row.get("discount_codes") or []],
                "source_name": "web",
                "line_items": [self._line(line, line["id"]) for line in row.get("line_items") or []],
                "refunds": [self._refund(refund) for refund in row.get("refunds") or []],
            }
        except (KeyError, TypeError, ValueError):
            self.skipped += 1
            return
        self._add("orders", record, customer, good, created, updated, order=True)

    def checkout(self, row: Record | None) -> None:
        parsed = self._parsed(row, "created_at", "updated_at")
        if parsed is None:
            return
        row, customer, created, updated, good = parsed
        token = f"{row['id']:032x}"
        try:
            completed = row.get("completed_at")
            record = {
                "id": row["id"],
                "name": f"#C{row['id'] % 10_000_000}",
                "token": token,
                "email": customer.get("email"),
                "completed_at": _time(completed) if completed is not None else None,
                "currency": row.get("currency") or "NOK",
                "customer_id": customer.get("id") if isinstance(customer.get("id"), int) else None,
                "abandoned_checkout_url": f"https://{self.state.shop_domain}/checkouts/{token}/recover",
                "line_items": [self._line(line, self.state.next_id()) for line in row.get("line_items") or []],
                "total_price": row.get("total_price"),
                "created_at": created,
                "updated_at": updated,
            }
        except (KeyError, TypeError, ValueError):
            self.skipped += 1
            return
        self._add("checkouts", record, customer, good, created, updated, order=False)

    def install(self) -> None:
        """Give guests' records their customer, then swap every stream into the state at once."""
        guest_ids = itertools.count(GUEST_IDS)
        found: dict[str, int] = {}
        for email, guest in self.guests.items():  # in the order first seen: the same ids on every seeding
            shop_id = self.account_of.get(email)
            if shop_id is None:
                shop_id = next(guest_ids)
                self.accounts[shop_id] = guest
            else:
                self.accounts[shop_id].absorb(guest)
            found[email] = shop_id
        for stream, ident, email in self.waiting:
            self.records[stream][ident]["customer_id"] = found[email]
        for shop_id, person in self.accounts.items():
            self.records["customers"][shop_id] = person.record(shop_id)
        with self.state.lock:
            for stream, records in self.records.items():
                self.state.records[stream] = records
            self.state.malformed = set(self.malformed)
            self.state.deletions.clear()
            self.state.bulk_ops.clear()

    def _parsed(
        self, row: Record | None, sure: str, other: str
    ) -> tuple[Record, Record, datetime, datetime, bool] | None:
        """``(row, its customer, time `sure`, time `other`, well-formed)``; None, counted as skipped, for a row
        that is no record (not JSON, no id, no time ``sure``: the demo never breaks that one)."""
        if row is None or not isinstance(row.get("id"), int):
            self.skipped += 1
            return None
        customer = row["customer"] if isinstance(row.get("customer"), dict) else {}
        try:
            sure_at = _time(row.get(sure))
        except ValueError:
            self.skipped += 1
            return None
        try:
            other_at, good = _time(row.get(other)), _good_email(customer.get("email"))
        except ValueError:  # the demo's bad date
            other_at, good = sure_at, False
        return row, customer, sure_at, other_at, good

    def _add(self, stream: str, record: Record, customer: Record, good: bool, *moments: datetime, order: bool) -> None:
        """Keep the record; a well-formed one tells its customer (by id, else by e-mail) about them."""
        self.records[stream][record["id"]] = record
        if not good:
            self.malformed.add((stream, record["id"]))
            return
        email = (record["email"] or "").lower()
        if record["customer_id"] is not None:
            person = self.accounts.setdefault(record["customer_id"], _Person(account=True))
            if email:
                self.account_of[email] = record["customer_id"]
        elif email and email != PLACEHOLDER_EMAIL:
            person = self.guests.setdefault(email, _Person())
            self.waiting.append((stream, record["id"], email))
        else:
            return
        person.learn(customer, *moments, order=order)

    def _line(self, line: Record, ident: int) -> Record:
        variant_id, product_id = self.variants.get(str(line.get("sku")), (None, None))
        return {
            "id": ident,
            "sku": line.get("sku"),
            "title": line.get("title"),
            "quantity": line.get("quantity"),
            "price": line.get("price"),
            "total_discount": line.get("total_discount") or "0.00",
            "variant_id": variant_id,
            "product_id": product_id,
        }

    def _refund(self, refund: Record) -> Record:
        return {
            "id": refund["id"],
            "created_at": _time(refund["created_at"]),
            "refund_line_items": [
                {"id": item["id"], "line_item_id": item["line_item_id"], "quantity": item["quantity"]}
                for item in refund.get("refund_line_items") or []
            ],
        }


# ------------------------------------------------------------------------------------------------ the sandbox's app


def app(
    *, customers: int = DEMO_CUSTOMERS, seed: int = DEMO_SEED, demo_dir: Path | None = None, **options: Any
) -> Starlette:
    """The emulator (``options`` as :func:`hub_plugins.shopify.emulator.app`) seeded with the demo's web shop.

    It also serves ``POST /_emulator/demo``: ``{"customers": 1000, "seed": 42}`` regenerates the shop for another
    data set, ``{"demo_dir": "var/demo"}`` reads one that ``hub demo-data`` wrote.
    """
    application = emulator.app(**options)
    state: ShopState = application.state.shopify
    seed_demo(state, demo_dir=demo_dir, customers=customers, seed=seed)
    application.router.routes.insert(0, Route("/_emulator/demo", _reseed(state), methods=["POST"]))
    return application


def _reseed(state: ShopState) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            demo_dir = body.get("demo_dir")
            customers, seed = int(body.get("customers", DEMO_CUSTOMERS)), int(body.get("seed", DEMO_SEED))
            if customers < 1:
                raise ValueError("customers must be at least 1")
        except (ValueError, TypeError) as exc:
            message = f'{exc}; give {{"customers": 1000, "seed": 42}} or {{"demo_dir": "var/demo"}}'
            return Response(orjson.dumps({"message": message}), 422, media_type="application/json")
        try:
            counts = await run_in_threadpool(
                seed_demo, state, demo_dir=Path(demo_dir) if demo_dir else None, customers=customers, seed=seed
            )
        except OSError as exc:
            return Response(orjson.dumps({"message": str(exc)}), 422, media_type="application/json")
        return Response(orjson.dumps({"seeded": counts}), media_type="application/json")

    return endpoint


#: What ``hub sandbox`` serves: the demo's web shop (``hub demo-data``'s 10,000 people, seed 42).
EMULATOR = Emulator(
    name="shopify",
    connector_type="shopify",
    app=app,
    settings=emulator.settings,
    default_port=emulator.DEFAULT_PORT,
    description="Shopify GraphQL Admin API: the demo's web shop (customers, orders, products, checkouts, "
    "inventory), bulk, webhooks",
)

#: The same emulator, empty: for tests that make their own records.
BLANK = emulator.EMULATOR
