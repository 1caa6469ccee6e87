"""GraphQL views of the emulator's records: objects whose attributes are the schema's camelCase fields.

graphql-core's default resolver reads an attribute (or a dict key) named like the field and calls it with the
field's arguments when it is a method, so each view is a plain class; ``__typename`` tells the ``Node``
interface which type a view is. Connections are keyset-paginated on ``(sort value, id)``: a cursor is that pair,
base64 JSON, so a record changed during a read moves behind it and is served again, as Shopify does.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from hub_plugins.shopify._records import iso, money
from hub_plugins.shopify._state import ShopState, parse_at

MAX_PAGE = 250
_TERM = re.compile(r"(\w+):(>=|<=|>|<)?('[^']*'|\"[^\"]*\"|\S+)")


def gid(kind: str, ident: Any) -> str:
    return f"gid://shopify/{kind}/{ident}"


def bag(amount: Any, currency: str = "NOK") -> dict[str, Any]:
    money_v2 = {"amount": money(amount if amount not in (None, "") else 0), "currencyCode": currency}
    return {"shopMoney": money_v2, "presentmentMoney": dict(money_v2)}


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return parse_at(value, "time").timestamp()
        except Exception:
            return 0.0
    return 0.0


# ------------------------------------------------------------------------------------------------ connections


def _encode(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode(cursor: str) -> tuple[Any, ...]:
    try:
        return tuple(json.loads(base64.urlsafe_b64decode(cursor.encode())))
    except (ValueError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from None


def connection(
    info: GraphQLResolveInfo,
    items: Iterable[Any],
    key: Callable[[Any], tuple[Any, ...]],
    wrap: Callable[[Any], Any],
    *,
    first: int | None,
    after: str | None,
    reverse: bool = False,
    nested: bool = False,
) -> dict[str, Any]:
    """One page of ``items`` after ``after`` in ``key`` order; every item in a bulk operation."""
    ordered = sorted(((key(item), item) for item in items), key=lambda pair: pair[0], reverse=reverse)
    if after:
        mark = _decode(after)
        ordered = [(k, i) for k, i in ordered if (k < mark if reverse else k > mark)]
    bulk = bool(info.context.get("bulk"))
    if bulk:
        page, more = ordered, False
    else:
        if first is None:
            if not nested:
                raise GraphQLError("you must provide one of first or last")
            first = MAX_PAGE
        if first > MAX_PAGE:
            raise GraphQLError(f"The requested page size {first} is over the maximum of {MAX_PAGE}")
        page, more = ordered[:first], len(ordered) > first
    edges = [{"cursor": _encode(k), "node": wrap(item)} for k, item in page]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": more,
            "hasPreviousPage": bool(after),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def search(query: str | None) -> list[tuple[str, str, str]]:
    """``updated_at:>='2025-01-06T09:00:00Z' status:open`` -> ``[(field, operator, value), ...]``."""
    if not query:
        return []
    return [(f, op or "=", v.strip("'\"")) for f, op, v in _TERM.findall(query)]


def _compare(actual: Any, op: str, wanted: Any) -> bool:
    if actual is None:
        return False
    return {
        "=": actual == wanted,
        ">": actual > wanted,
        ">=": actual >= wanted,
        "<": actual < wanted,
        "<=": actual <= wanted,
    }[op]


def matches(record: dict[str, Any], terms: list[tuple[str, str, str]], times: dict[str, str]) -> bool:
    """Whether a record passes every term; unknown fields are ignored, as Shopify's search ignores them."""
    for field, op, value in terms:
        if field in times:
            try:
                wanted = parse_at(value, field).timestamp()
            except Exception:
                raise GraphQLError(f"Invalid search value for {field}: {value!r}") from None
            if not _compare(_seconds(record.get(times[field])), op, wanted):
                return False
        elif field == "id":
            if not value.isdigit() or not _compare(record["id"], op, int(value)):
                return False
        elif field == "status" and "completed_at" in record:
            if (record.get("completed_at") is None) != (value == "open"):
                return False
        elif field == "sku" and record.get("sku") != value:
            return False
    return True


# ------------------------------------------------------------------------------------------------ views


class _View:
    stream = ""

    def __init__(self, state: ShopState, record: dict[str, Any]) -> None:
        self.shop = state
        self.r = record

    @property
    def updatedAt(self) -> Any:
        if self.shop.is_malformed(self.stream, self.r["id"]):
            return "not a timestamp"
        return iso(self.r.get("updated_at"))

    @property
    def createdAt(self) -> Any:
        return iso(self.r.get("created_at"))


def _person(state: ShopState, record: dict[str, Any]) -> CustomerView | None:
    customer = state.customer_of(record)
    return CustomerView(state, customer) if customer is not None else None


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class CustomerView(_View):
    __typename = "Customer"
    stream = "customers"

    def __getattr__(self, name: str) -> Any:
        simple = {"firstName": "first_name", "lastName": "last_name", "email": "email", "phone": "phone"}
        if name in simple:
            return self.r.get(simple[name])
        raise AttributeError(name)

    @property
    def id(self) -> str:
        return gid("Customer", self.r["id"])

    @property
    def state(self) -> str:
        return _upper(self.r.get("state") or "enabled")

    @property
    def tags(self) -> list[str]:
        return list(self.r.get("tags") or [])

    @property
    def locale(self) -> str:
        return self.r.get("locale") or "en"

    def _consent(self, key: str) -> dict[str, Any] | None:
        consent = self.r.get(key)
        if not consent:
            return None
        out = {
            "marketingState": _upper(consent.get("state")),
            "marketingOptInLevel": _upper(consent.get("opt_in_level")),
            "consentUpdatedAt": iso(consent.get("consent_updated_at")),
        }
        if "consent_collected_from" in consent:
            out["consentCollectedFrom"] = _upper(consent.get("consent_collected_from"))
        return out

    @property
    def emailMarketingConsent(self) -> dict[str, Any] | None:
        return self._consent("email_marketing_consent")

    @property
    def smsMarketingConsent(self) -> dict[str, Any] | None:
        consent = self._consent("sms_marketing_consent")
        if consent is not None and consent["marketingOptInLevel"] is None:
            consent["marketingOptInLevel"] = "UNKNOWN"
        return consent

    @property
    def defaultAddress(self) -> dict[str, Any] | None:
        address = self.r.get("default_address")
        if not address:
            return None
        return {
            "address1": address.get("address1"),
            "city": address.get("city"),
            "zip": address.get("zip"),
            "countryCodeV2": address.get("country_code"),
        }


def _variant_stub(ident: Any, line: dict[str, Any]) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {
        "id": gid("ProductVariant", ident),
        "sku": line.get("sku"),
        "title": line.get("title") or "Default",
        "price": money(line.get("price") or 0),
        "barcode": None,
        "updatedAt": None,
        "inventoryItem": {"id": gid("InventoryItem", ident)},
    }


def _product_stub(ident: Any) -> dict[str, Any] | None:
    return None if ident is None else {"id": gid("Product", ident)}


class LineItemView:
    __typename = "LineItem"

    def __init__(self, line: dict[str, Any], currency: str, kind: str = "LineItem") -> None:
        self.line = line
        self.currency = currency
        self.kind = kind

    @property
    def id(self) -> str:
        return gid(self.kind, self.line["id"])

    @property
    def sku(self) -> Any:
        return self.line.get("sku")

    @property
    def title(self) -> Any:
        return self.line.get("title")

    @property
    def quantity(self) -> Any:
        return self.line.get("quantity")

    @property
    def originalUnitPriceSet(self) -> dict[str, Any]:
        return bag(self.line.get("price"), self.currency)

    @property
    def totalDiscountSet(self) -> dict[str, Any]:
        return bag(self.line.get("total_discount"), self.currency)

    @property
    def variant(self) -> dict[str, Any] | None:
        return _variant_stub(self.line.get("variant_id"), self.line)

    @property
    def product(self) -> dict[str, Any] | None:
        return _product_stub(self.line.get("product_id"))


class CheckoutLineView(LineItemView):
    __typename = "AbandonedCheckoutLineItem"


class RefundView:
    __typename = "Refund"

    def __init__(self, refund: dict[str, Any], order: dict[str, Any]) -> None:
        self.refund = refund
        self.order = order
        self.lines = {line["id"]: line for line in order.get("line_items") or []}
        self.currency = order.get("currency") or "NOK"

    @property
    def id(self) -> str:
        return gid("Refund", self.refund["id"])

    @property
    def createdAt(self) -> Any:
        return iso(self.refund.get("created_at"))

    note = None

    def _price(self, item: dict[str, Any]) -> Decimal:
        return Decimal(str(self.lines.get(item["line_item_id"], {}).get("price") or 0))

    @property
    def totalRefundedSet(self) -> dict[str, Any]:
        items = self.refund.get("refund_line_items") or []
        return bag(sum((self._price(i) * i["quantity"] for i in items), Decimal(0)), self.currency)

    def refundLineItems(self, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None) -> Any:
        def wrap(item: dict[str, Any]) -> dict[str, Any]:
            line = self.lines.get(item["line_item_id"], {"id": item["line_item_id"]})
            price = self._price(item)
            return {
                "id": gid("RefundLineItem", item["id"]),
                "quantity": item["quantity"],
                "lineItem": LineItemView(line, self.currency),
                "priceSet": bag(price, self.currency),
                "subtotalSet": bag(price * item["quantity"], self.currency),
            }

        items = self.refund.get("refund_line_items") or []
        return connection(info, items, lambda i: (i["id"],), wrap, first=first, after=after, nested=True)


class OrderView(_View):
    __typename = "Order"
    stream = "orders"

    @property
    def id(self) -> str:
        return gid("Order", self.r["id"])

    def __getattr__(self, name: str) -> Any:
        simple = {"name": "name", "email": "email", "phone": "phone", "sourceName": "source_name"}
        if name in simple:
            return self.r.get(simple[name])
        raise AttributeError(name)

    @property
    def currency(self) -> str:
        return self.r.get("currency") or "NOK"

    @property
    def processedAt(self) -> Any:
        return iso(self.r.get("processed_at") or self.r.get("created_at"))

    @property
    def cancelledAt(self) -> Any:
        return iso(self.r.get("cancelled_at"))

    @property
    def currencyCode(self) -> str:
        return self.currency

    @property
    def displayFinancialStatus(self) -> Any:
        return _upper(self.r.get("financial_status"))

    @property
    def discountCodes(self) -> list[str]:
        return list(self.r.get("discount_codes") or [])

    @property
    def totalPriceSet(self) -> dict[str, Any]:
        return bag(self.r.get("total_price"), self.currency)

    @property
    def currentTotalPriceSet(self) -> dict[str, Any]:
        return bag(self.r.get("current_total_price") or self.r.get("total_price"), self.currency)

    @property
    def totalDiscountsSet(self) -> dict[str, Any]:
        return bag(self.r.get("total_discounts"), self.currency)

    @property
    def customer(self) -> CustomerView | None:
        return _person(self.shop, self.r)

    def lineItems(self, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None) -> Any:
        lines = self.r.get("line_items") or []
        wrap = lambda line: LineItemView(line, self.currency)  # noqa: E731
        return connection(info, lines, lambda line: (line["id"],), wrap, first=first, after=after, nested=True)

    def refunds(self, info: GraphQLResolveInfo, first: int | None = None) -> list[RefundView]:
        refunds = [RefundView(refund, self.r) for refund in self.r.get("refunds") or []]
        return refunds[:first] if first is not None else refunds


class VariantView:
    __typename = "ProductVariant"

    def __init__(self, variant: dict[str, Any], product: dict[str, Any]) -> None:
        self.v = variant
        self.product = product

    @property
    def id(self) -> str:
        return gid("ProductVariant", self.v["id"])

    @property
    def sku(self) -> Any:
        return self.v.get("sku")

    @property
    def title(self) -> Any:
        return self.v.get("title") or "Default Title"

    @property
    def price(self) -> str:
        return money(self.v.get("price") or 0)

    @property
    def barcode(self) -> Any:
        return self.v.get("barcode")

    @property
    def updatedAt(self) -> Any:
        return iso(self.v.get("updated_at") or self.product.get("updated_at"))

    @property
    def inventoryItem(self) -> dict[str, Any]:
        return {"id": gid("InventoryItem", self.v.get("inventory_item_id") or self.v["id"])}


class ProductView(_View):
    __typename = "Product"
    stream = "products"

    @property
    def id(self) -> str:
        return gid("Product", self.r["id"])

    @property
    def title(self) -> Any:
        return self.r.get("title")

    @property
    def handle(self) -> Any:
        return self.r.get("handle") or str(self.r["id"])

    @property
    def productType(self) -> str:
        return self.r.get("product_type") or ""

    @property
    def vendor(self) -> str:
        return self.r.get("vendor") or ""

    @property
    def tags(self) -> list[str]:
        return list(self.r.get("tags") or [])

    @property
    def status(self) -> Any:
        return _upper(self.r.get("status") or "active")

    def variants(self, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None) -> Any:
        variants = self.r.get("variants") or []
        wrap = lambda variant: VariantView(variant, self.r)  # noqa: E731
        return connection(info, variants, lambda v: (v["id"],), wrap, first=first, after=after, nested=True)


class CheckoutView(_View):
    __typename = "AbandonedCheckout"
    stream = "checkouts"

    @property
    def id(self) -> str:
        return gid("AbandonedCheckout", self.r["id"])

    @property
    def name(self) -> Any:
        return self.r.get("name") or f"#{self.r['id']}"

    @property
    def completedAt(self) -> Any:
        return iso(self.r.get("completed_at"))

    @property
    def abandonedCheckoutUrl(self) -> Any:
        return self.r.get("abandoned_checkout_url") or f"https://{self.shop.shop_domain}/checkouts/{self.r['id']}"

    @property
    def totalPriceSet(self) -> dict[str, Any]:
        return bag(self.r.get("total_price"), self.r.get("currency") or "NOK")

    @property
    def customer(self) -> CustomerView | None:
        return _person(self.shop, self.r)

    def lineItems(self, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None) -> Any:
        currency = self.r.get("currency") or "NOK"
        wrap = lambda line: CheckoutLineView(line, currency, "AbandonedCheckoutLineItem")  # noqa: E731
        lines = self.r.get("line_items") or []
        return connection(info, lines, lambda line: (line["id"],), wrap, first=first, after=after, nested=True)


class InventoryItemView(_View):
    __typename = "InventoryItem"
    stream = "inventory"

    @property
    def id(self) -> str:
        return gid("InventoryItem", self.r["id"])

    @property
    def sku(self) -> Any:
        return self.r.get("sku")

    @property
    def variant(self) -> dict[str, Any]:
        return {"id": gid("ProductVariant", self.r.get("variant_id") or self.r["id"])}

    def inventoryLevels(self, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None) -> Any:
        levels = self.r.get("levels") or []
        return connection(
            info, levels, lambda level: (level["id"],), self._level, first=first, after=after, nested=True
        )

    def _level(self, level: dict[str, Any]) -> dict[str, Any]:
        def quantities(info: GraphQLResolveInfo, names: list[str]) -> list[dict[str, Any]]:
            return [{"name": n, "quantity": int(level.get(n) or 0) if n == "available" else 0} for n in names]

        return {
            "id": gid("InventoryLevel", f"{level['id']}?inventory_item_id={self.r['id']}"),
            "updatedAt": iso(level.get("updated_at") or self.r.get("updated_at")),
            "location": {"id": gid("Location", level.get("location_id")), "name": level.get("location_name") or ""},
            "quantities": quantities,
        }


VIEWS: dict[str, type[_View]] = {
    "customers": CustomerView,
    "orders": OrderView,
    "products": ProductView,
    "checkouts": CheckoutView,
    "inventory": InventoryItemView,
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
