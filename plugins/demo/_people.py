"""The truth: people, the identifiers only they have, and how each system writes those identifiers down.

Identifiers come from keyed bijections of the person's index (:class:`Scramble`), so they are unique without
a table of used values: memory stays flat however many people there are. Every system then writes the same
identifier its own way (case, spaces, phone formats): the mess identity resolution has to see through.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from hub_plugins.demo._calendar import DAYS
from hub_plugins.demo._catalog import Weighted
from hub_plugins.demo._vocab import (
    CITIES,
    COMPANY_FORMS,
    COMPANY_WORDS,
    EMAIL_DOMAINS,
    FEMALE_NAMES,
    GROUPS,
    LAST_NAMES,
    MALE_NAMES,
    STREETS,
    City,
)

FIRST_NAMES = FEMALE_NAMES + MALE_NAMES
# Patterns of an email's local part. Each keeps both names whole, so two people never share one.
LOCAL_PATTERNS = ("{f}.{l}", "{f}{l}", "{f}_{l}", "{l}.{f}")
# Norwegian mobile ranges that libphonenumber accepts as valid.
MOBILE_PREFIXES = (40, 41, 46, 47, 48, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99)
_ASCII = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "é": "e"})

# Which systems know a consumer: (web shop, loyalty club at the tills, ERP register) and how often.
_SYSTEMS = Weighted(
    [
        (True, False, False),
        (False, True, False),
        (False, False, True),
        (True, True, False),
        (True, False, True),
        (False, True, True),
        (True, True, True),
    ],
    [20, 28, 5, 17, 7, 13, 10],
)
B2B_SHARE = 0.03
ORDERS_ALPHA = 1.6  # the shape of the order-count distribution: lower means a heavier tail
ORDERS_SCALE = 1.1
MAX_ORDERS = 150
_DOMAINS = Weighted([d for d, _ in EMAIL_DOMAINS], [w for _, w in EMAIL_DOMAINS])
_CITY = Weighted(list(CITIES), [c.weight for c in CITIES])
_GROUPS = Weighted(list(GROUPS), [g.weight for g in GROUPS.values()])
_B2B_GROUPS = Weighted(["paint", "power_tools", "storage", "bathroom", "garden"], [3, 3, 2, 2, 1])


class Scramble:
    """A keyed bijection of ``[0, size)``: a 4-round Feistel network over the next even power of two, with
    cycle walking to stay inside ``size``. Consecutive inputs give unrelated-looking outputs."""

    __slots__ = ("_half", "_keys", "_mask", "_size")

    def __init__(self, size: int, rng: random.Random) -> None:
        bits = max(2, (size - 1).bit_length())
        self._half = (bits + 1) // 2
        self._mask = (1 << self._half) - 1
        self._size = size
        self._keys = tuple(rng.getrandbits(32) for _ in range(4))

    def __call__(self, value: int) -> int:
        if not 0 <= value < self._size:
            raise ValueError(f"{value} is outside [0, {self._size})")
        half, mask = self._half, self._mask
        while True:
            left, right = value >> half, value & mask
            for key in self._keys:
                left, right = right, left ^ ((((right ^ key) * 0x9E3779B97F4A7C15) >> 29) & mask)
            value = (left << half) | right
            if value < self._size:
                return value


@dataclass(slots=True)
class Person:
    """One real person. ``email`` and ``phone`` are canonical here; systems write them their own way."""

    index: int
    first_name: str
    last_name: str
    email: str  # lower case
    phone: str  # 8 national digits
    member_no: str | None  # loyalty club
    shop_id: int | None  # web shop customer id
    in_erp: bool
    birth: date
    street: str
    postcode: str
    city: City
    company: str | None  # B2B customers only
    orgnr: str | None
    interests: tuple[str, ...]  # product groups this person buys from
    start_day: int  # first day this person may buy on
    orders: int  # how many orders (web and store) this person places
    marketing: bool  # wants the newsletter
    web_share: float  # of this person's orders, the part placed online

    @property
    def b2b(self) -> bool:
        return self.company is not None


class People:
    """Makes person ``i`` of ``range(count)``: traits drawn from ``rng``, identifiers bijective in ``i``."""

    def __init__(self, count: int, rng: random.Random) -> None:
        names = len(FIRST_NAMES) * len(LAST_NAMES) * len(LOCAL_PATTERNS)
        self._names = Scramble(names * max(1, math.ceil(count / names)), rng)
        # 99999999 (the last number) is left out: hub rightly takes one repeated digit for a filler.
        self._phones = Scramble(len(MOBILE_PREFIXES) * 1_000_000 - 1, rng)
        self._members = Scramble(100_000_000, rng)
        self._shop_ids = Scramble(1_000_000_000, rng)
        self._rng = rng

    def make(self, i: int) -> Person:
        rng = self._rng
        first, last, local = self._name(i)
        web, pos, erp = _SYSTEMS.pick(rng)
        company = orgnr = None
        if rng.random() < B2B_SHARE:
            company = f"{last} {rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_FORMS)}"
            orgnr = _orgnr(rng)
            erp, pos, web = True, rng.random() < 0.8, rng.random() < 0.4
            pos = pos or not web
            domain = company.rsplit(" ", 1)[0].lower().translate(_ASCII).replace(" ", "") + ".no"
            interests = tuple(dict.fromkeys(_B2B_GROUPS.pick(rng) for _ in range(3)))
        else:
            domain = _DOMAINS.pick(rng)
            interests = tuple(dict.fromkeys(_GROUPS.pick(rng) for _ in range(rng.randint(1, 3))))
        phone = self._phones(i)
        city = _CITY.pick(rng)
        buys = web or pos
        start_day = 0 if rng.random() < 0.75 else rng.randrange(DAYS - 30)
        # Pareto: most people buy once or twice, a few every other week. Late joiners have less time.
        drawn = rng.paretovariate(ORDERS_ALPHA) * ORDERS_SCALE * (DAYS - start_day) / DAYS
        orders = min(MAX_ORDERS, max(1, round(drawn))) if buys else 0
        if company:
            orders = min(MAX_ORDERS * 3, orders * rng.randint(4, 10))  # a contractor buys every week
        return Person(
            index=i,
            first_name=first,
            last_name=last,
            email=f"{local}@{domain}",
            phone=f"{MOBILE_PREFIXES[phone // 1_000_000]}{phone % 1_000_000:06d}",
            member_no=f"70{self._members(i):08d}" if pos else None,
            shop_id=6_100_000_000_000 + self._shop_ids(i) if web else None,
            in_erp=erp,
            birth=date(1940, 1, 1) + timedelta(days=int(rng.triangular(0, 65 * 365, 35 * 365))),
            street=f"{rng.choice(STREETS)} {rng.randint(1, 120)}{rng.choice(('', '', '', '', 'A', 'B'))}",
            postcode=f"{city.postcode + rng.randrange(40):04d}",
            city=city,
            company=company,
            orgnr=orgnr,
            interests=interests,
            start_day=start_day,
            orders=orders,
            marketing=rng.random() < 0.55,
            web_share=(0.0 if not web else 1.0 if not pos else rng.uniform(0.1, 0.45)),
        )

    def _name(self, i: int) -> tuple[str, str, str]:
        """First name, last name and the email's local part, unique to person ``i``."""
        n = self._names(i)
        n, f = divmod(n, len(FIRST_NAMES))
        n, l_ = divmod(n, len(LAST_NAMES))
        number, p = divmod(n, len(LOCAL_PATTERNS))
        first, last = FIRST_NAMES[f], LAST_NAMES[l_]
        local = LOCAL_PATTERNS[p].format(f=first.lower().translate(_ASCII), l=last.lower().translate(_ASCII))
        return first, last, f"{local}{number}" if number else local


def _orgnr(rng: random.Random) -> str:
    """A Norwegian organisation number with a valid modulus-11 check digit."""
    while True:
        digits = [9, *(rng.randrange(10) for _ in range(7))]
        check = 11 - sum(d * w for d, w in zip(digits, (3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check % 11)


# --- how each system writes an identifier -------------------------------------------------------------------


def shop_email(rng: random.Random, email: str) -> str:
    """As typed at the web shop's sign-up: mostly lower case, sometimes capitalised."""
    r = rng.random()
    if r < 0.7:
        return email
    if r < 0.9:
        return email[0].upper() + email[1:]
    local, domain = email.split("@")
    return f"{local}@{domain.capitalize()}"


def erp_email(rng: random.Random, email: str) -> str:
    """As keyed into the ERP: upper case or padded with spaces, never as the web shop writes it."""
    return rng.choice((f" {email}", f"{email} ", f"  {email.upper()}", email.upper(), f"{email.title()} "))


def shop_phone(rng: random.Random, phone: str) -> str:
    r = rng.random()
    if r < 0.5:
        return f"+47{phone}"
    if r < 0.75:
        return f"+47 {phone[:3]} {phone[3:5]} {phone[5:]}"
    return phone


def erp_phone(rng: random.Random, phone: str, *, avoid: str | None) -> str:
    """ERP phone formats; ``avoid`` is the web shop's version, so the two always differ when both exist."""
    formats = [
        f"0047 {phone}",
        f"{phone[:3]}-{phone[3:5]}-{phone[5:]}",
        f"{phone[:3]} {phone[3:5]} {phone[5:]}",
    ]
    if avoid != phone:
        formats.append(phone)
    return rng.choice(formats)
