"""The Akeneo emulator's memory: the catalogue, OAuth clients and tokens, faults, and the control API on them.

Products are stored in Akeneo's standard format (``values``, ``associations``...) with their ``created`` and
``updated`` times as datetimes. Search reads ``updated`` as the search index has it: with ``index_delay`` set, a
change becomes visible to ``search`` only that many seconds after it was made, as Akeneo's Elasticsearch index
lags behind its database (a product fetched by UUID is always current).

:class:`AkeneoState` implements :class:`hub.sources.emulator.EmulatorControl`: the streams ``products`` and
``relations`` are both products (relations are read from products' associations), keyed as the source keys
their records: ``products`` by UUID, ``relations`` by SKU; ``families``, ``categories``, ``attributes`` and
``association_types`` are keyed by code.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PRODUCT_STREAMS = frozenset({"products", "relations"})
REFERENCE_STREAMS = ("families", "categories", "attributes", "association_types")
DEFAULT_CLIENT = ("hub_client_id", "hub_client_secret")
DEFAULT_USER = ("hub_api_user", "hub_api_password")
DEFAULT_LOCALES = ("en_US", "nb_NO")
DEFAULT_CURRENCIES = ("NOK", "EUR")
REFRESH_TTL = 14 * 24 * 3600.0
#: The association types of a fresh Akeneo (the first four) and the one hub's demo keeps accessories in.
ASSOCIATION_TYPES = ("X_SELL", "UPSELL", "SUBSTITUTION", "PACK", "ACCESSORIES")
_PRODUCT_FIELDS = ("enabled", "family", "categories", "groups", "parent", "values", "associations")


class ApiError(Exception):
    """An answer in Akeneo's error format, ``{"code": status, "message": ...}`` (plus ``extra`` keys)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "message": self.message, **self.extra}


@dataclass(slots=True)
class Product:
    """A stored product. ``index`` holds (visible from, ``updated``) as the search index learns of changes."""

    uuid: str
    data: dict[str, Any]  # the standard format's fields in _PRODUCT_FIELDS
    created: datetime
    updated: datetime
    index: list[tuple[float, datetime]] = field(default_factory=list)

    def searched_updated(self, now: float) -> datetime | None:
        """``updated`` as search sees it at monotonic time ``now``; None: not indexed yet."""
        seen = None
        for visible, updated in self.index:
            if visible <= now:
                seen = updated
        return seen


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(text: str | None) -> datetime:
    """A control API time (ISO 8601; naive is UTC), or now; whole seconds, as Akeneo stores them."""
    if text is None:
        return now_utc()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def labels(text: str, **by_locale: str) -> dict[str, str]:
    return {locale: by_locale.get(locale, text) for locale in DEFAULT_LOCALES}


class AkeneoState:
    """Everything the emulator holds; ``lock`` guards it (requests run on several threads)."""

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
        token_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = threading.RLock()
        self.clients = dict(clients or dict([DEFAULT_CLIENT]))
        self.users = dict(users or dict([DEFAULT_USER]))
        self.token_ttl = token_ttl
        self.refresh_ttl = REFRESH_TTL
        self.index_delay = 0.0
        self.clock = clock
        self.tokens: dict[str, float] = {}  # access token -> expiry (clock)
        self.refresh_tokens: dict[str, float] = {}
        self.grants: list[str] = []  # every granted token's grant type, in order
        self.products: dict[str, Product] = {}
        self.families: dict[str, dict[str, Any]] = {}
        self.categories: dict[str, dict[str, Any]] = {}
        self.attributes: dict[str, dict[str, Any]] = {}
        self.options: dict[str, dict[str, dict[str, Any]]] = {}  # attribute -> option code -> option
        self.association_types: dict[str, dict[str, Any]] = {}
        self.malformed_keys: set[str] = set()
        self.throttled = 0
        self.retry_after = 15.0
        self._numbers = itertools.count(1)
        self.reset_catalogue()

    # -- the catalogue ------------------------------------------------------------------------------------------------

    def reset_catalogue(self) -> None:
        """An empty PIM with the attributes, families, categories and association types new products use."""
        with self.lock:
            self.products.clear()
            self.malformed_keys.clear()
            self.attributes = {
                "sku": _attribute("sku", "pim_catalog_identifier", "SKU"),
                "name": _attribute("name", "pim_catalog_text", "Name", localizable=True),
                "brand": _attribute("brand", "pim_catalog_simpleselect", "Brand"),
                "price": _attribute("price", "pim_catalog_price_collection", "Price"),
                "accessory": _attribute("accessory", "pim_catalog_boolean", "Accessory"),
            }
            self.options = {"brand": {"nordhjem": _option("brand", "nordhjem", "Nordhjem")}}
            self.families = {"grills": _family("grills", labels("Grills", nb_NO="Griller"))}
            self.categories = {
                "master": _category("master", None, labels("Master catalogue")),
                "gas_grills": _category("gas_grills", "master", labels("Gas grills", nb_NO="Gassgriller")),
            }
            self.association_types = {code: _association_type(code) for code in ASSOCIATION_TYPES}

    def add_product(
        self,
        data: Mapping[str, Any],
        *,
        updated: datetime,
        uuid: str | None = None,
        created: datetime | None = None,
        owned: bool = False,
    ) -> str:
        """Store a product in the standard format (fields not given get defaults); its UUID.

        ``owned``: the caller hands ``data`` over (it is stored, not copied), as the demo seeding does.
        """
        with self.lock:
            key = uuid or str(uuidlib.uuid4())
            number = next(self._numbers)
            stored = {
                "enabled": True,
                "family": "grills",
                "categories": ["gas_grills"],
                "groups": [],
                "parent": None,
                "values": {
                    "sku": [_value(f"AK-{number:05d}")],
                    "name": [_value(f"Grill {number}", locale) for locale in DEFAULT_LOCALES],
                    "brand": [_value("nordhjem")],
                    "price": [_value([{"amount": "1990.00", "currency": c} for c in DEFAULT_CURRENCIES])],
                    "accessory": [_value(False)],
                },
                "associations": {},
            }
            product = Product(key, stored, created or updated, updated)
            self.products[key] = product
            self._patch(product, data, updated, owned=owned)
            return key

    def change_product(self, key: str, data: Mapping[str, Any], *, updated: datetime) -> None:
        with self.lock:
            self._patch(self.products[key], data, updated)

    def _patch(self, product: Product, data: Mapping[str, Any], updated: datetime, *, owned: bool = False) -> None:
        """Akeneo's PATCH: top-level fields replace; ``values`` merge per attribute, ``associations`` per type."""
        unknown = sorted(set(data) - set(_PRODUCT_FIELDS) - {"uuid"})
        if unknown:
            raise ValueError(f"unknown product field(s) {', '.join(unknown)}; known: {', '.join(_PRODUCT_FIELDS)}")
        for name, value in data.items():
            if name in ("values", "associations"):
                if not isinstance(value, Mapping):
                    raise ValueError(f"{name} must be an object")
                merged = product.data.setdefault(name, {})
                for code, entry in value.items():
                    entry = dict(entry) if name == "associations" else entry
                    merged[code] = entry if owned else copy.deepcopy(entry)
            elif name != "uuid":
                product.data[name] = value if owned else copy.deepcopy(value)
        product.updated = updated
        product.index.append((self.clock() + self.index_delay, updated))

    def put_reference(self, stream: str, item: Mapping[str, Any]) -> str:
        code = item.get("_key", item.get("code"))
        if not isinstance(code, str) or not code:
            raise ValueError(f"a {stream} item needs a code")
        table: dict[str, dict[str, Any]] = getattr(self, stream)
        with self.lock:
            entry = table.setdefault(code, {"code": code, "labels": {}})
            entry.update({k: copy.deepcopy(v) for k, v in item.items() if k not in ("_key", "options")})
            if stream == "attributes" and "options" in item:
                self.options[code] = {
                    o["code"]: _option(code, o["code"], o["code"], names=o.get("labels")) for o in item["options"]
                }
        return code

    # -- the control API (hub.sources.emulator.EmulatorControl) -------------------------------------------------------

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        if stream in REFERENCE_STREAMS:
            return [self.put_reference(stream, item) for item in records]
        if stream not in PRODUCT_STREAMS:
            raise KeyError(stream)
        updated = parse_time(updated_at)
        keys: list[str] = []
        with self.lock:
            for item in records:
                if "_key" in item:
                    uuid = self.uuid_for(stream, str(item["_key"]))
                    self.change_product(uuid, {k: v for k, v in item.items() if k != "_key"}, updated=updated)
                else:
                    uuid = self.add_product(item, updated=updated, uuid=item.get("uuid"))
                keys.append(uuid if stream == "products" else str(self.sku_of(uuid)))
        return keys

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        """Gone from the API; associations that point at it stay, as the notes warn they can."""
        with self.lock:
            uuid = self.uuid_for(stream, key)
            del self.products[uuid]
            self.malformed_keys.discard(uuid)

    def malformed(self, stream: str, key: str) -> None:
        with self.lock:
            self.malformed_keys.add(self.uuid_for(stream, key))

    def uuid_for(self, stream: str, key: str) -> str:
        """The UUID of a product as a stream keys it: ``products`` by UUID, ``relations`` by SKU."""
        if stream not in PRODUCT_STREAMS:
            raise KeyError(stream)
        with self.lock:
            if stream == "products":
                if key not in self.products:
                    raise KeyError(key)
                return key
            for uuid in self.products:
                if self.sku_of(uuid) == key:
                    return uuid
        raise KeyError(key)

    def sku_of(self, uuid: str) -> Any:
        entries = (self.products[uuid].data.get("values") or {}).get("sku") or [{}]
        return entries[0].get("data") if isinstance(entries[0], Mapping) else None

    def throttle(self, count: int, retry_after: float) -> None:
        with self.lock:
            self.throttled, self.retry_after = count, retry_after

    # -- OAuth --------------------------------------------------------------------------------------------------------

    def grant(self, grant_type: str) -> dict[str, Any]:
        """A new access token and refresh token, as the token endpoint answers."""
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with self.lock:
            now = self.clock()
            self.tokens[access] = now + self.token_ttl
            self.refresh_tokens[refresh] = now + self.refresh_ttl
            self.grants.append(grant_type)
        ttl = int(self.token_ttl) if float(self.token_ttl).is_integer() else self.token_ttl
        return {
            "access_token": access,
            "expires_in": ttl,
            "token_type": "bearer",
            "scope": None,
            "refresh_token": refresh,
        }

    def use_refresh_token(self, token: str) -> bool:
        """Spend a refresh token (each is good once, like Akeneo's); whether it was valid."""
        with self.lock:
            expiry = self.refresh_tokens.pop(token, None)
        return expiry is not None and expiry > self.clock()

    def token_problem(self, token: str | None) -> str | None:
        """Why a bearer token is refused, in Akeneo's words; None when it is good."""
        if not token:
            return "Authentication is required"
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None:
            return "The access token provided is invalid."
        if expiry <= self.clock():
            return "The access token provided has expired."
        return None

    def expire_tokens(self, *, refresh: bool = False) -> None:
        """Every access token (and with ``refresh``, every refresh token) stops working now."""
        with self.lock:
            now = self.clock()
            self.tokens = {token: min(expiry, now) for token, expiry in self.tokens.items()}
            if refresh:
                self.refresh_tokens.clear()

    def take_throttle(self) -> float | None:
        """The Retry-After of a throttled answer for this request, or None."""
        with self.lock:
            if self.throttled <= 0:
                return None
            self.throttled -= 1
            return self.retry_after

    # -- inspection -------------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "products": len(self.products),
                "families": sorted(self.families),
                "categories": len(self.categories),
                "association_types": sorted(self.association_types),
                "grants": list(self.grants),
                "malformed": sorted(self.malformed_keys),
                "token_ttl": self.token_ttl,
                "index_delay": self.index_delay,
            }


def _value(data: Any, locale: str | None = None, scope: str | None = None) -> dict[str, Any]:
    return {"locale": locale, "scope": scope, "data": data}


def _attribute(code: str, kind: str, label: str, *, localizable: bool = False) -> dict[str, Any]:
    return {
        "code": code,
        "type": kind,
        "group": "marketing" if code != "sku" else "other",
        "unique": kind == "pim_catalog_identifier",
        "localizable": localizable,
        "scopable": False,
        "labels": labels(label),
    }


def _option(attribute: str, code: str, label: str, *, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"code": code, "attribute": attribute, "sort_order": 0, "labels": dict(names) if names else labels(label)}


def _family(code: str, names: dict[str, str]) -> dict[str, Any]:
    return {
        "code": code,
        "attribute_as_label": "name",
        "attribute_as_image": None,
        "attributes": ["sku", "name", "brand", "price", "accessory"],
        "attribute_requirements": {},
        "labels": names,
    }


def _category(code: str, parent: str | None, names: dict[str, str]) -> dict[str, Any]:
    return {"code": code, "parent": parent, "updated": "2024-01-01T00:00:00+00:00", "position": 1, "labels": names}


def _association_type(code: str) -> dict[str, Any]:
    words = {
        "X_SELL": "Cross sell",
        "UPSELL": "Upsell",
        "SUBSTITUTION": "Substitution",
        "PACK": "Pack",
        "ACCESSORIES": "Accessories",
    }
    return {"code": code, "labels": labels(words.get(code, code)), "is_quantified": False, "is_two_way": False}
