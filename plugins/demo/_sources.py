"""How each system records what a person does: the ERP row, web shop orders and POS receipt lines.

Every record also reports the identity keys it carries (as hub would normalise them) unless it is malformed,
so the generator can count the customers that perfect merging must end with. Malformed rows (about 0.5 %) and
placeholder identifiers are decided here, from the same random stream, so they are the same on every run.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from hub_plugins.demo._calendar import DAYS, Calendar
from hub_plugins.demo._catalog import Catalog, Product, Store, Weighted
from hub_plugins.demo._people import Person, erp_email, erp_phone, shop_email, shop_phone
from hub_plugins.demo._sorted import MonthlyFiles
from hub_plugins.demo._vocab import EMAIL_DOMAINS, GROUPS

MALFORMED_RATE = 0.005
PLACEHOLDER_EMAIL = "noreply@shop.no"  # typed for guests who give no address
PLACEHOLDER_MEMBER = "0"  # "no card" in the till and in the ERP
PLACEHOLDER_PHONE = "00000000"  # "unknown" in the ERP

POS_COLUMNS = (
    "receipt_id", "store_id", "register_id", "business_date", "timestamp", "line_no", "sku", "qty", "unit_price",
    "line_discount", "line_total", "currency", "loyalty_id", "original_receipt_id",
)  # fmt: skip
ERP_COLUMNS = (
    "kundenr", "kundetype", "medlemsnr", "fornavn", "etternavn", "epost", "mobil", "adresse", "postnr", "sted",
    "land", "fodt", "bedrift", "orgnr", "nyhetsbrev", "endret",
)  # fmt: skip
WEB_KEY_WIDTH = 30  # YYYYMMDD HHMMSS + 16-digit order id
POS_KEY_WIDTH = 27  # YYYYMMDD HHMMSS + 10-digit receipt id + 3-digit line

Key = tuple[str, ...]  # ("email", "kari@x.no"), ("external_id", "erp", "100001"), ...
Basket = list[tuple[Product, int, int]]  # product, quantity, discount in øre


def money(ore: int) -> str:
    sign = "-" if ore < 0 else ""
    ore = abs(ore)
    return f"{sign}{ore // 100}.{ore % 100:02d}"


@dataclass(slots=True)
class Tally:
    """What was written, by stream and kind: the figures of the manifest."""

    malformed: Counter[str] = field(default_factory=Counter)  # kind -> rows
    rejects: Counter[str] = field(default_factory=Counter)  # connector.stream -> rows hub must set aside
    placeholders: Counter[str] = field(default_factory=Counter)  # kind -> rows carrying one
    orders: Counter[str] = field(default_factory=Counter)

    def fault(self, stream: str, kinds: tuple[str, ...], rng: random.Random) -> str:
        kind = rng.choice(kinds)
        self.malformed[kind] += 1
        self.rejects[stream] += 1
        return kind


@dataclass(frozen=True, slots=True)
class ShopIdentity:
    """A person as the web shop has them on file: one spelling of email and phone, kept on every order."""

    email: str
    phone: str | None
    marketing_at: str


@dataclass(frozen=True, slots=True)
class WebOrder:
    """A web order placed, as the carts before it need it."""

    order_id: int
    created: str  # ISO 8601 with Oslo's offset
    basket: Basket


#: Fields to add to a web order (a campaign): (the order, its day index, whether it is the person's first online).
OrderTagger = Callable[[dict[str, Any], int, bool], dict[str, Any]]


class Systems:
    """Writes the records of the web shop, the tills and the ERP for one person at a time.

    ``placed`` holds the current person's web orders, and ``tag_order`` may add fields to each (a campaign).
    Neither draws from ``rng``, nor does any draw depend on the added fields, so the rest of the data is the
    same with or without them.
    """

    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        calendar: Calendar,
        web: MonthlyFiles,
        pos: MonthlyFiles,
        tally: Tally | None = None,
        tag_order: OrderTagger | None = None,
    ) -> None:
        self.rng, self.catalog, self.calendar, self.web, self.pos = rng, catalog, calendar, web, pos
        self.tally = tally or Tally()
        self.tag_order = tag_order
        self.placed: list[WebOrder] = []
        self._season = [Weighted(list(GROUPS), [g.weight * g.season[m] for g in GROUPS.values()]) for m in range(12)]
        self._domains = [d for d, _ in EMAIL_DOMAINS]
        self._order_id = 5_500_000_000_000
        self._line_id = 14_000_000_000_000
        self._refund_id = 900_000_000
        self._receipt_no = 1_000_000_000
        self._customer_no = 100_000

    # --- ERP ---------------------------------------------------------------------------------------------

    def erp_row(self, p: Person, shop: ShopIdentity | None, links: set[tuple[Key, ...]]) -> list[str]:
        """The person's row in the ERP register, in ERP_COLUMNS order."""
        rng = self.rng
        self._customer_no += 1
        customer_no = str(self._customer_no)
        member = ""
        if p.member_no is not None:
            member = p.member_no if rng.random() < 0.92 else ""
        elif rng.random() < 0.4:
            member = PLACEHOLDER_MEMBER
            self.tally.placeholders["member_no"] += 1
        email = None
        r = rng.random()
        if p.b2b or (shop is not None and r < 0.82) or (shop is None and r < 0.65):
            email = p.email
        elif shop is not None and r < 0.92:  # a second address the shop never saw: links only through others
            local, domain = p.email.split("@")
            email = f"{local}@{rng.choice([d for d in self._domains if d != domain])}"
        phone = ""
        r = rng.random()
        if r < 0.82:
            phone = erp_phone(rng, p.phone, avoid=shop.phone if shop else None)
        elif r < 0.86:
            phone = PLACEHOLDER_PHONE
            self.tally.placeholders["phone"] += 1
        shout = rng.random() < 0.25  # an old terminal that typed names in capitals
        first, last = (p.first_name.upper(), p.last_name.upper()) if shout else (p.first_name, p.last_name)
        changed = rng.randrange(p.start_day, DAYS)
        row = [
            customer_no,
            "B" if p.b2b else "P",
            member,
            first,
            last,
            erp_email(rng, email) if email else "",
            phone,
            p.street,
            p.postcode,
            p.city.name.upper() if rng.random() < 0.5 else p.city.name,
            "NO" if rng.random() < 0.92 else "Norge",
            p.birth.strftime("%d.%m.%Y") if not p.b2b and rng.random() < 0.65 else "",
            p.company or "",
            p.orgnr or "",
            ("J" if p.marketing else "N") if rng.random() < 0.8 else "",
            f"{self.calendar.days[changed].iso} {self.calendar.time(rng, changed, web=True)}",
        ]
        if rng.random() < MALFORMED_RATE:
            kind = self.tally.fault("erp.customers", ("bad_email", "bad_date") if email else ("bad_date",), rng)
            if kind == "bad_email" and email:
                row[5] = email.replace("@", "@@")
            else:
                row[11] = f"{rng.choice((30, 31))}.02.{p.birth.year}"
            return row
        keys: list[Key] = [("external_id", "erp", customer_no)]
        if member and member != PLACEHOLDER_MEMBER:
            keys.append(("member_no", member))
        if email:
            keys.append(("email", email))
        if phone and phone != PLACEHOLDER_PHONE:
            keys.append(("phone", f"+47{p.phone}"))
        links.add(tuple(keys))
        return row

    # --- orders ------------------------------------------------------------------------------------------

    def shop_identity(self, p: Person) -> ShopIdentity | None:
        if p.shop_id is None:
            return None
        rng = self.rng
        phone = shop_phone(rng, p.phone) if rng.random() < 0.55 else None
        day = self.calendar.days[p.start_day]
        moment = f"{day.iso}T{self.calendar.time(rng, p.start_day, web=True)}{day.offset}"
        return ShopIdentity(email=shop_email(rng, p.email), phone=phone, marketing_at=moment)

    def orders(self, p: Person, shop: ShopIdentity | None, links: set[tuple[Key, ...]]) -> None:
        """Every order the person places, online and in stores, in time order (the grill before its cover)."""
        rng, calendar = self.rng, self.calendar
        self.placed = []
        home = rng.choice(self.catalog.stores_in[p.city.name])
        owned: list[str] = []
        plans = sorted(
            (calendar.day(rng, web=web, after=p.start_day), web)
            for web in (rng.random() < p.web_share for _ in range(p.orders))
        )
        for day, web in plans:
            basket = self._basket(p.interests, owned, calendar.days[day].month, b2b=p.b2b)
            if web and shop is not None:
                self._web_order(p, shop, day, basket, links)
                continue
            r = rng.random()
            if r < 0.9:
                loyalty = p.member_no or ""
            elif r < 0.92:
                loyalty = PLACEHOLDER_MEMBER  # the cashier's "no card"
            else:
                loyalty = ""  # forgot the card
            store = home if rng.random() < 0.8 else self.catalog.store_pick.pick(rng)
            self._receipt(store, day, basket, loyalty, links)

    def anonymous_receipt(self) -> None:
        """A walk-in customer nobody knows."""
        rng = self.rng
        day = self.calendar.day(rng, web=False)
        group = self._season[self.calendar.days[day].month].pick(rng)
        basket = self._basket((group,), [], self.calendar.days[day].month, b2b=False)
        self._receipt(self.catalog.store_pick.pick(rng), day, basket, "", set())

    def _basket(self, interests: tuple[str, ...], owned: list[str], month: int, *, b2b: bool) -> Basket:
        rng, catalog = self.rng, self.catalog
        count = 1
        more = 0.7 if b2b else 0.6
        while count < 12 and rng.random() < more:
            count += 1
        season = self._season[month]
        group = rng.choice(interests) if rng.random() < 0.75 else season.pick(rng)
        basket: Basket = []
        mains: list[str] = []
        for n in range(count):
            r = rng.random()
            anchors = mains or owned
            if n == 0:
                product = (catalog.main_pick if r < 0.55 else catalog.accessory_pick)[group].pick(rng)
            elif anchors and r < 0.5:  # the cover for the grill in the basket, or the one bought in May
                product = rng.choice(catalog.accessories_of[rng.choice(anchors)])
            elif r < 0.8:
                product = catalog.accessory_pick[group].pick(rng)
            else:
                other = season.pick(rng)
                product = (catalog.main_pick if rng.random() < 0.4 else catalog.accessory_pick)[other].pick(rng)
            if product.is_accessory:
                quantity = rng.randint(2, 12) if b2b else (1 if rng.random() < 0.65 else rng.randint(2, 4))
            else:
                mains.append(product.sku)
                quantity = rng.randint(1, 3) if b2b else (1 if rng.random() < 0.92 else 2)
            discount = 0
            if rng.random() < 0.12:
                discount = product.price * quantity * rng.choice((10, 20, 25, 30, 40)) // 10_000 * 100
            basket.append((product, quantity, discount))
        owned.extend(mains)
        del owned[:-5]
        return basket

    def _web_order(self, p: Person, shop: ShopIdentity, day: int, basket: Basket, links: set[tuple[Key, ...]]) -> None:
        rng, calendar = self.rng, self.calendar
        self._order_id += 1
        order_id = self._order_id
        d = calendar.days[day]
        time = calendar.time(rng, day, web=True)
        created = f"{d.iso}T{time}{d.offset}"
        items = []
        total = 0
        for product, quantity, discount in basket:
            self._line_id += 1
            items.append(
                {
                    "id": self._line_id,
                    "sku": product.sku,
                    "title": product.name,
                    "quantity": quantity,
                    "price": money(product.price),
                    "total_discount": money(discount),
                }
            )
            total += product.price * quantity - discount
        r = rng.random()
        kind = "customer" if r < 0.85 else "guest" if r < 0.95 else "placeholder"
        customer: dict[str, Any] = {
            "id": p.shop_id if kind == "customer" else None,
            "email": shop.email if kind != "placeholder" else PLACEHOLDER_EMAIL,
            "phone": shop.phone,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "accepts_marketing": p.marketing if kind == "customer" else None,
            "accepts_marketing_updated_at": shop.marketing_at if kind == "customer" else None,
        }
        if kind == "placeholder":
            self.tally.placeholders["email"] += 1
        order: dict[str, Any] = {
            "id": order_id,
            "name": f"#{order_id - 5_500_000_000_000 + 1000}",
            "created_at": created,
            "updated_at": created,
            "currency": "NOK",
            "total_price": money(total),
            "current_total_price": money(total),
            "total_discounts": money(sum(b[2] for b in basket)),
            "financial_status": "paid",
            "customer": customer,
            "line_items": items,
        }
        extra = self.tag_order(order, day, not self.placed) if self.tag_order is not None else {}
        self.placed.append(WebOrder(order_id, created, basket))
        if rng.random() < 0.04 and day + 2 < DAYS:
            self._refund(order, day, basket)
        self.tally.orders["web_orders"] += 1
        self.tally.orders["web_order_lines"] += len(items)
        line = orjson.dumps(order | extra).decode() + "\n"
        valid = True
        if rng.random() < MALFORMED_RATE:
            valid = False
            fault = self.tally.fault("webshop.orders", ("bad_email", "bad_date", "broken_json"), rng)
            if fault == "bad_email":
                customer["email"] = customer["email"].replace("@", "@@")
            elif fault == "bad_date":
                order["created_at"] = f"{d.iso[:5]}13-{d.iso[8:]}T{time}{d.offset}"
            line = orjson.dumps(order | extra).decode() + "\n"
            if fault == "broken_json":  # the export died mid-line (where, drawn as if the order had no extras)
                line = line[: rng.randrange(10, (len(orjson.dumps(order).decode()) + 1) // 2)] + "\n"
        self.web.add(f"{d.compact}{time.replace(':', '')}{order_id:016d}", line)
        if valid:
            keys: list[Key] = []
            if kind == "customer":
                keys.append(("external_id", "webshop", str(p.shop_id)))
            if kind != "placeholder":
                keys.append(("email", p.email))
            if shop.phone:
                keys.append(("phone", f"+47{p.phone}"))
            if keys:
                links.add(tuple(keys))

    def _refund(self, order: dict[str, Any], day: int, basket: Basket) -> None:
        """Shopify's shape: refunded quantities are positive, inside ``refunds[].refund_line_items``."""
        rng, calendar = self.rng, self.calendar
        when = min(DAYS - 1, day + rng.randint(2, 30))
        d = calendar.days[when]
        refund_lines = []
        refunded = 0
        whole = True
        for item, (product, quantity, discount) in zip(order["line_items"], basket, strict=True):
            if rng.random() < 0.6 or (not refund_lines and item is order["line_items"][-1]):
                returned = rng.randint(1, quantity)
                whole = whole and returned == quantity
                subtotal = product.price * returned - discount * returned // quantity
                refunded += subtotal
                self._line_id += 1
                refund_lines.append(
                    {
                        "id": self._line_id,
                        "line_item_id": item["id"],
                        "quantity": returned,
                        "subtotal": money(subtotal),
                        "line_item": {"sku": product.sku, "price": money(product.price)},
                    }
                )
            else:
                whole = False
        self._refund_id += 1
        moment = f"{d.iso}T{calendar.time(rng, when, web=True)}{d.offset}"
        order["refunds"] = [{"id": self._refund_id, "created_at": moment, "refund_line_items": refund_lines}]
        order["updated_at"] = moment
        order["financial_status"] = "refunded" if whole else "partially_refunded"
        total = sum(p.price * q - disc for p, q, disc in basket)
        order["current_total_price"] = money(total - refunded)
        self.tally.orders["web_refunds"] += 1

    def _receipt(self, store: Store, day: int, basket: Basket, loyalty: str, links: set[tuple[Key, ...]]) -> None:
        rng = self.rng
        receipt_id = self._pos_lines(store, day, basket, loyalty, "", links)
        self.tally.orders["pos_receipts"] += 1
        if not loyalty:
            self.tally.orders["pos_anonymous_receipts"] += 1
        if rng.random() < 0.04 and day + 1 < DAYS:  # brought back within a month, to the same store mostly
            back = min(DAYS - 1, day + rng.randint(1, 30))
            returned: Basket = []
            for product, quantity, discount in basket:
                if rng.random() < 0.7 or (not returned and product is basket[-1][0]):
                    back_qty = rng.randint(1, quantity)  # the discount comes back in proportion
                    returned.append((product, -back_qty, -(discount * back_qty // quantity)))
            self._pos_lines(store, back, returned, loyalty, receipt_id, links)
            self.tally.orders["pos_returns"] += 1

    def _pos_lines(
        self, store: Store, day: int, basket: Basket, loyalty: str, original: str, links: set[tuple[Key, ...]]
    ) -> str:
        rng = self.rng
        self._receipt_no += 1
        receipt_id = str(self._receipt_no)
        d = self.calendar.days[day]
        time = self.calendar.time(rng, day, web=False)
        stamp = f"{d.compact}{time.replace(':', '')}{receipt_id}"
        register = str(rng.randint(1, store.registers))
        valid = 0
        for n, (product, quantity, discount) in enumerate(basket, 1):
            row = [
                receipt_id,
                store.store_id,
                register,
                d.iso,
                f"{d.iso} {time}",
                str(n),
                product.sku,
                str(quantity),
                money(product.price),
                money(discount),
                money(product.price * quantity - discount),
                "NOK",
                loyalty,
                original,
            ]
            if rng.random() < MALFORMED_RATE:
                fault = self.tally.fault("pos.receipts", ("bad_date", "bad_quantity", "missing_receipt_id"), rng)
                if fault == "bad_date":
                    row[4] = rng.choice((f"{d.iso[:8]}32 {time}", f"{d.iso} 25{time[2:]}", f"{d.iso[8:]}.{d.iso[5:7]}"))
                elif fault == "bad_quantity":
                    row[7] = rng.choice(("to", "2 stk", "x", "1..2"))
                else:
                    row[0] = ""
            else:
                valid += 1
            self.pos.add(f"{stamp}{n:03d}", ",".join(row) + "\n")
        self.tally.orders["pos_lines"] += len(basket)
        if loyalty == PLACEHOLDER_MEMBER:
            self.tally.placeholders["member_no"] += len(basket)
        if valid and loyalty and loyalty != PLACEHOLDER_MEMBER:
            links.add((("member_no", loyalty),))
        return receipt_id
