"""What the audience programmes read besides orders: web shop carts, e-mail and loyalty events, order campaigns.

Only people the web shop already knows get carts and events, and each carries the email (and, for a signed-in
cart, the shop's customer id) the shop's own orders carry, so no record here adds or joins a customer: the
manifest's expected customers stay what the orders and the ERP make. The last days of the data period get
more carts and the loyalty club's notices of points expiring in January 2025, so an audience run at the turn
of the year (``make demo`` uses 2025-01-01 08:00 Oslo) has abandoned carts and expiring points to act on.

Everything is drawn from a random stream of its own: the orders, receipts and ERP rows are the same bytes
with or without this module, apart from the campaign fields it adds to web orders.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from hub_plugins.demo._calendar import DAYS, FIRST_DAY, TIMEZONE, Calendar
from hub_plugins.demo._catalog import Catalog, Product
from hub_plugins.demo._people import Person
from hub_plugins.demo._sorted import MonthlyFiles
from hub_plugins.demo._sources import MALFORMED_RATE, Key, ShopIdentity, Tally, WebOrder, money

KEY_WIDTH = 30  # YYYYMMDD HHMMSS (Oslo) + a 16-digit id
CARTS_FILE = "carts.jsonl"
EVENTS_FILE = "events.jsonl"
FAULTS = ("bad_date", "bad_email", "broken_json")

# Carts: a checkout before some orders, an abandoned one before a few (the customer came back later), and
# carts never ordered, about ABANDONED_PER_PERSON per shop customer over the two years.
CONVERTED_CART = 0.35
RETURNED_CART = 0.08
LATE_RETURNED_CART = 0.3  # before an order of the last week, by hours: left in the holidays, ordered later
ABANDONED_PER_PERSON = 0.45
SIGNED_IN = 0.7  # carts of a signed-in customer carry the shop's customer id, the rest only the email
LATE_CART = 0.03  # a cart in the last LATE_DAYS days of the period, for the audience run at New Year
LATE_DAYS = 3
# E-mail: the newsletter's readers open a few issues and click some; a few addresses bounce hard for good.
OPENS_PER_READER = 5.0
CLICK = 0.3
HARD_BOUNCE = 0.04
# Loyalty club: the year-end notice of points expiring in January, and an older one from the summer.
POINTS_NOTICE = 0.12
OLD_POINTS_NOTICE = 0.08
# Campaigns: a code in season, a welcome code on a first web order, the weekly newsletter's UTM campaign.
WELCOME_CODE = "VELKOMMEN10"
WELCOME = 0.12
NEWSLETTER_UTM = 0.08
_SEASONS = (  # (first day, last day, code, share of the web orders in between)
    (date(2023, 3, 15), date(2023, 5, 15), "SPRING23", 0.2),
    (date(2023, 6, 20), date(2023, 7, 31), "SOMMER23", 0.15),
    (date(2023, 11, 20), date(2023, 11, 27), "BLACKFRIDAY23", 0.45),
    (date(2023, 12, 1), date(2023, 12, 22), "JUL23", 0.15),
    (date(2024, 3, 15), date(2024, 5, 15), "SPRING24", 0.2),
    (date(2024, 6, 20), date(2024, 7, 31), "SOMMER24", 0.15),
    (date(2024, 11, 25), date(2024, 12, 2), "BLACKFRIDAY24", 0.45),
    (date(2024, 12, 1), date(2024, 12, 22), "JUL24", 0.15),
)
_BOUNCES = ("550 5.1.1 mailbox unavailable", "550 5.1.1 user unknown", "550 5.4.1 recipient address rejected")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _iso(moment: datetime) -> str:
    return moment.astimezone(TIMEZONE).isoformat()


def _key(moment: datetime, number: int) -> str:
    return f"{moment.astimezone(TIMEZONE).strftime('%Y%m%d%H%M%S')}{number:016d}"


class Audience:
    """Writes ``webshop/carts.jsonl`` and ``webshop/events.jsonl`` for one person at a time, time-sorted."""

    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        calendar: Calendar,
        tally: Tally,
        *,
        out: Path,
        scratch: Path,
        budget: int,
    ) -> None:
        self.rng, self.catalog, self.calendar, self.tally = rng, catalog, calendar, tally
        self.figures: Counter[str] = Counter()
        # One file each: MonthlyFiles with the empty month writes every row, in key order, to prefix + suffix.
        self._carts, self._events = (
            MonthlyFiles(
                out,
                prefix=name.removesuffix(".jsonl"),
                suffix=".jsonl",
                months=("",),
                key_width=KEY_WIDTH,
                scratch=scratch,
                budget=budget,
            )
            for name in (CARTS_FILE, EVENTS_FILE)
        )
        self._seasons = [
            ((start - FIRST_DAY).days, (end - FIRST_DAY).days, code, share) for start, end, code, share in _SEASONS
        ]
        self._cart_id = 27_000_000_000_000
        self._event_id = 0

    def close(self) -> dict[str, int]:
        """Merge the sorted runs into the two files; rows per file name."""
        return {**self._carts.close(), **self._events.close()}

    # --- orders -----------------------------------------------------------------------------------------

    def tag_order(self, order: dict[str, Any], day: int, first: bool) -> dict[str, Any]:
        """Fields that give a share of web orders a campaign: a discount code, or the newsletter's UTM campaign."""
        rng = self.rng
        extra: dict[str, Any] = {}
        code = None
        for start, end, name, share in self._seasons:
            if start <= day <= end and rng.random() < share:
                code = name
                break
        if code is None and first and rng.random() < WELCOME:
            code = WELCOME_CODE
        if code is not None:
            extra["discount_codes"] = [{"code": code, "amount": order["total_discounts"], "type": "percentage"}]
        elif rng.random() < NEWSLETTER_UTM:
            year, week, _ = (FIRST_DAY + timedelta(days=day)).isocalendar()
            code = f"nyhetsbrev-{year}-uke{week:02d}"
            extra["landing_site"] = f"/?utm_source=newsletter&utm_medium=email&utm_campaign={code}"
            extra["note_attributes"] = [{"name": "utm_campaign", "value": code}]
        if code is not None:
            self.figures["orders_with_campaign"] += 1
        return extra

    # --- one person ---------------------------------------------------------------------------------------

    def person(self, p: Person, shop: ShopIdentity | None, orders: list[WebOrder], links: set[tuple[Key, ...]]) -> None:
        """The person's carts and events, if the shop knows them by an email that already identifies them."""
        if shop is None or p.shop_id is None or not any(("email", p.email) in keys for keys in links):
            return
        self._carts_of(p, shop, orders, links)
        self._events_of(p, shop, links)

    def _carts_of(self, p: Person, shop: ShopIdentity, orders: list[WebOrder], links: set[tuple[Key, ...]]) -> None:
        rng, calendar = self.rng, self.calendar
        for order in orders:
            placed = _moment(order.created)
            items = [(product, quantity) for product, quantity, _ in order.basket]
            if rng.random() < CONVERTED_CART:
                updated = placed - timedelta(seconds=rng.randint(20, 240))
                created = updated - timedelta(seconds=rng.randint(60, 3600))
                self._cart(p, shop, created, updated, items, links, order_id=order.order_id, completed=placed)
            late = placed.date() >= FIRST_DAY + timedelta(days=DAYS - 7)
            if rng.random() < (LATE_RETURNED_CART if late else RETURNED_CART):  # left in the cart, ordered later
                before = rng.randint(3 * 3600, 36 * 3600) if late else rng.randint(86_400, 6 * 86_400)
                updated = placed - timedelta(seconds=before)
                if updated.date() >= FIRST_DAY:
                    kept = [item for item in items if rng.random() < 0.7] or items[:1]
                    created = updated - timedelta(seconds=rng.randint(60, 7200))
                    self._cart(p, shop, created, updated, kept, links)
        count = 0
        while rng.random() < ABANDONED_PER_PERSON / (1 + ABANDONED_PER_PERSON):  # geometric, that mean
            count += 1
        days = [calendar.day(rng, web=True, after=p.start_day) for _ in range(count)]
        if rng.random() < LATE_CART:
            days.append(rng.randrange(DAYS - LATE_DAYS, DAYS))
        for day in days:
            d = calendar.days[day]
            updated = _moment(f"{d.iso}T{calendar.time(rng, day, web=True)}{d.offset}")
            created = updated - timedelta(seconds=rng.randint(60, 5400))
            self._cart(p, shop, created, updated, self._browse(p), links)

    def _browse(self, p: Person) -> list[tuple[Product, int]]:
        """What someone puts in a cart and leaves: a main product of their interests, maybe an accessory or two."""
        rng, catalog = self.rng, self.catalog
        group = rng.choice(p.interests)
        items = [(catalog.main_pick[group].pick(rng), 1)]
        while len(items) < 4 and rng.random() < 0.45:
            items.append((catalog.accessory_pick[group].pick(rng), 1 if rng.random() < 0.7 else 2))
        return items

    def _cart(
        self,
        p: Person,
        shop: ShopIdentity,
        created: datetime,
        updated: datetime,
        items: list[tuple[Product, int]],
        links: set[tuple[Key, ...]],
        *,
        order_id: int | None = None,
        completed: datetime | None = None,
    ) -> None:
        rng = self.rng
        self._cart_id += 1
        signed_in = rng.random() < SIGNED_IN
        cart: dict[str, Any] = {
            "id": self._cart_id,
            "created_at": _iso(created),
            "updated_at": _iso(updated),
            "completed_at": _iso(completed) if completed else None,
            "status": "converted" if order_id else "open",
            "order_id": order_id,
            "currency": "NOK",
            "total_price": money(sum(product.price * quantity for product, quantity in items)),
            "customer": {"id": p.shop_id if signed_in else None, "email": shop.email},
            "line_items": [
                {"sku": product.sku, "title": product.name, "quantity": quantity, "price": money(product.price)}
                for product, quantity in items
            ],
        }
        self.figures["carts"] += 1
        self.figures[f"carts_{cart['status']}"] += 1
        if updated.date() >= FIRST_DAY + timedelta(days=DAYS - LATE_DAYS):
            self.figures[f"carts_{cart['status']}_last_{LATE_DAYS}_days"] += 1
        keys: list[Key] = [("external_id", "webshop", str(p.shop_id))] if signed_in else []
        self._write(
            self._carts,
            "webshop.carts",
            _key(updated, self._cart_id),
            cart,
            ("customer", "email"),
            "updated_at",
            [*keys, ("email", p.email)],
            links,
        )

    def _events_of(self, p: Person, shop: ShopIdentity, links: set[tuple[Key, ...]]) -> None:
        rng, calendar = self.rng, self.calendar
        if p.marketing:
            opens = 0
            while rng.random() < OPENS_PER_READER / (1 + OPENS_PER_READER):
                opens += 1
            days = sorted(calendar.day(rng, web=True, after=p.start_day) for _ in range(opens))
            bounce = rng.randrange(p.start_day, DAYS) if rng.random() < HARD_BOUNCE else None
            for day in days:
                if bounce is not None and day >= bounce:
                    break
                d = calendar.days[day]
                opened = _moment(f"{d.iso}T{calendar.time(rng, day, web=True)}{d.offset}")
                year, week, _ = opened.isocalendar()
                payload: dict[str, Any] = {"campaign": f"nyhetsbrev-{year}-uke{week:02d}"}
                self._event(p, shop, "email_opened", opened, payload, links)
                if rng.random() < CLICK:
                    clicked = opened + timedelta(seconds=rng.randint(5, 1800))
                    self._event(p, shop, "email_clicked", clicked, {**payload, "url": "/kampanje"}, links)
            if bounce is not None:
                d = calendar.days[bounce]
                at = _moment(f"{d.iso}T{calendar.time(rng, bounce, web=True)}{d.offset}")
                reason = rng.choice(_BOUNCES)
                self._event(p, shop, "email_bounced", at, {"bounce_type": "hard", "reason": reason}, links)
        if p.member_no is None:
            return
        if rng.random() < POINTS_NOTICE:  # the year-end run: points that lapse in January 2025
            at = datetime(2024, 12, rng.randint(28, 31), rng.randint(3, 5), rng.randrange(60), tzinfo=TIMEZONE)
            expires = date(2025, 1, rng.randint(2, 20))
            self._points(p, shop, at, expires, links)
        if rng.random() < OLD_POINTS_NOTICE:  # the summer run: long expired
            at = datetime(2024, 6, rng.randint(10, 20), rng.randint(3, 5), rng.randrange(60), tzinfo=TIMEZONE)
            self._points(p, shop, at, date(2024, 7, rng.randint(1, 15)), links)

    def _points(self, p: Person, shop: ShopIdentity, at: datetime, expires: date, links: set[tuple[Key, ...]]) -> None:
        points = self.rng.randint(5, 300) * 10
        self._event(p, shop, "points_expiring", at, {"points": points, "expires_on": expires.isoformat()}, links)
        if expires.year == 2025:
            self.figures["points_expiring_2025_01"] += 1

    def _event(
        self,
        p: Person,
        shop: ShopIdentity,
        kind: str,
        at: datetime,
        payload: dict[str, Any],
        links: set[tuple[Key, ...]],
    ) -> None:
        self._event_id += 1
        event = {
            "id": f"ev_{self._event_id:012d}",
            "type": kind,
            "occurred_at": _iso(at),
            "email": shop.email,
            "payload": payload,
        }
        self.figures["events"] += 1
        self.figures[f"events_{kind}"] += 1
        self._write(
            self._events,
            "webshop.events",
            _key(at, self._event_id),
            event,
            ("email",),
            "occurred_at",
            [("email", p.email)],
            links,
        )

    def _write(
        self,
        files: MonthlyFiles,
        stream: str,
        key: str,
        record: dict[str, Any],
        email: tuple[str, ...],
        stamp: str,
        keys: list[Key],
        links: set[tuple[Key, ...]],
    ) -> None:
        """One record as a JSON line; about MALFORMED_RATE of them broken in a way hub must set aside."""
        rng = self.rng
        line = orjson.dumps(record).decode() + "\n"
        if rng.random() < MALFORMED_RATE:
            fault = self.tally.fault(stream, FAULTS, rng)
            if fault == "bad_email":
                holder = record
                for part in email[:-1]:
                    holder = holder[part]
                holder[email[-1]] = holder[email[-1]].replace("@", "@@")
            elif fault == "bad_date":
                value = record[stamp]
                record[stamp] = f"{value[:5]}13{value[7:]}"
            line = orjson.dumps(record).decode() + "\n"
            if fault == "broken_json":  # the export died mid-line
                line = line[: rng.randrange(10, len(line) // 2)] + "\n"
        else:
            links.add(tuple(keys))
        files.add(key, line)
