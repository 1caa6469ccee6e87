"""Akeneo products as hub's raw records: the ``products`` record, the ``relations`` record, and bad data.

An Akeneo product keeps its data in ``values`` (per attribute, a list of ``{locale, scope, data}``) and its links
in ``associations`` (per association type, lists of product UUIDs, product model codes and group codes). Neither
shape can be read by a mapping path, so the source flattens them here:

``products``  ``{uuid, sku, name, product_group, category, brand, price, currency, is_accessory, family,
              categories, parent, master_id, enabled, created, updated, attributes: {code: data}}``
``relations`` ``{uuid, sku, updated, relations: [{related_sku, related_uuid, kind, association}], unresolved}``

A product that cannot be placed or keyed (no UUID, an ``updated`` that is no timestamp, no SKU) raises
:class:`BadProduct`; the source yields it as an error record with the product as received.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from hub_plugins.akeneo.reference import Reference
from hub_plugins.akeneo.settings import AkeneoSettings

SIMPLE_SELECT = "pim_catalog_simpleselect"
MULTI_SELECT = "pim_catalog_multiselect"


class BadProduct(ValueError):
    """A product the source cannot place or key; the message says why, in plain words."""


def updated_of(item: Mapping[str, Any]) -> datetime:
    """The product's ``updated`` as an aware datetime; BadProduct when it is missing or no timestamp."""
    raw = item.get("updated")
    if not isinstance(raw, str):
        raise BadProduct(f"product {item.get('uuid')} has no updated time")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadProduct(f"product {item.get('uuid')}: updated {raw!r} is not a timestamp") from None
    if moment.year < 1971:  # MySQL's zero date, 0000-00-00, comes through as year 1 or fails above
        raise BadProduct(f"product {item.get('uuid')}: updated {raw!r} is not a real time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def uuid_of(item: Mapping[str, Any]) -> str:
    uuid = item.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise BadProduct("a product without a uuid")
    return uuid


def pick(entries: Any, locales: Iterable[str | None], scope: str | None) -> Any:
    """The ``data`` of the value for the first of ``locales`` (then a non-localizable one) in ``scope`` (then a
    non-scopable one); None when there is none."""
    if not isinstance(entries, list):
        return None
    wanted = [*dict.fromkeys(locales), None]
    scopes = [scope, None] if scope is not None else [None]
    best: tuple[int, int] | None = None
    data = None
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        locale, channel = entry.get("locale"), entry.get("scope")
        if locale not in wanted or channel not in scopes:
            continue
        rank = (wanted.index(locale), scopes.index(channel))
        if best is None or rank < best:
            best, data = rank, entry.get("data")
    return data


class Flattener:
    """Turns Akeneo products into the records above, under one connector's settings."""

    def __init__(self, settings: AkeneoSettings, reference: Reference) -> None:
        self.settings = settings
        self.reference = reference
        self._locales = (settings.locale, settings.fallback_locale)

    def sku_of(self, item: Mapping[str, Any]) -> str:
        values = item.get("values")
        if not isinstance(values, Mapping):
            raise BadProduct(f"product {item.get('uuid')}: values is not an object")
        sku = pick(values.get(self.settings.identifier_attribute), (None,), None)
        if not isinstance(sku, str) or not sku.strip():
            attribute = self.settings.identifier_attribute
            raise BadProduct(f"product {item.get('uuid')} has no {attribute} (the identifier hub keys products by)")
        return sku.strip()

    def product(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The ``products`` record of one product (BadProduct when it cannot be keyed)."""
        uuid, sku = uuid_of(item), self.sku_of(item)
        updated_of(item)
        values: Mapping[str, Any] = item["values"]
        attributes = {code: pick(entries, self._locales, self.settings.scope) for code, entries in values.items()}
        family = item.get("family") if isinstance(item.get("family"), str) else None
        categories = [c for c in item.get("categories") or [] if isinstance(c, str)]
        price, currency = self._price(attributes)
        return {
            "uuid": uuid,
            "sku": sku,
            "name": _text(attributes.get(self.settings.name_attribute)),
            "product_group": self._group(family, categories),
            "category": self.reference.category_label(categories[0]) if categories else None,
            "brand": self._brand(attributes),
            "price": price,
            "currency": currency,
            "is_accessory": self._accessory(attributes),
            "family": family,
            "categories": categories,
            "parent": item.get("parent"),
            "master_id": item.get("root_parent") or item.get("parent"),
            "enabled": item.get("enabled"),
            "created": item.get("created"),
            "updated": item.get("updated"),
            "attributes": attributes,
        }

    def associated(self, item: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(association type, kind, related product UUID) of the configured association types, in order."""
        associations = item.get("associations")
        if associations is None:
            return []
        if not isinstance(associations, Mapping):
            raise BadProduct(f"product {item.get('uuid')}: associations is not an object")
        found: list[tuple[str, str, str]] = []
        for code, kind in self.settings.associations.items():
            links = associations.get(code) or {}
            products = links.get("products") if isinstance(links, Mapping) else None
            if products is None:
                continue
            if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
                raise BadProduct(f"product {item.get('uuid')}: associations.{code}.products is not a list of UUIDs")
            found.extend((code, kind, related) for related in products)
        return found

    # -- the derived fields ------------------------------------------------------------------------------------------

    def _group(self, family: str | None, categories: list[str]) -> str | None:
        settings = self.settings
        code = family if settings.group_from == "family" else (categories[0] if categories else None)
        if code is None or settings.group_as == "code":
            return code
        if settings.group_from == "family":
            return self.reference.family_label(code)
        return self.reference.category_label(code)

    def _brand(self, attributes: Mapping[str, Any]) -> str | None:
        attribute = self.settings.brand_attribute
        if attribute is None:
            return None
        data = attributes.get(attribute)
        if isinstance(data, list):  # a multi select: the first option
            data = data[0] if data else None
        if not isinstance(data, str) or not data:
            return _text(data)
        if self.reference.attribute_type(attribute) in (SIMPLE_SELECT, MULTI_SELECT):
            return self.reference.option_label(attribute, data)
        return data

    def _price(self, attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
        attribute = self.settings.price_attribute
        prices = attributes.get(attribute) if attribute else None
        if not isinstance(prices, list):
            return None, None
        for price in prices:
            if isinstance(price, Mapping) and price.get("currency") == self.settings.currency:
                amount = price.get("amount")
                return (None if amount is None else str(amount)), self.settings.currency
        return None, None

    def _accessory(self, attributes: Mapping[str, Any]) -> bool | None:
        attribute = self.settings.accessory_attribute
        if attribute is None:
            return None
        data = attributes.get(attribute)
        return data if isinstance(data, bool) else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, list | dict):
        return None
    text = str(value).strip()
    return text or None
