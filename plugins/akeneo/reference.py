"""Akeneo's reference data as products need it: family and category labels, attribute types, option labels.

A product names its family, categories and brand option by code; hub's product wants a group, a category label
and a brand name. :class:`Reference` reads each list once per source and again only when a product names a
code it has not seen (a family created since), so a sync costs a handful of requests however many products it
reads. Labels are taken in the configured locale, then the fallback locale, then the code itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from hub import SourceError
from hub.sources.http import describe

#: GET a path (or an absolute ``_links.next.href``) with query params; the final response.
Get = Callable[[str, Mapping[str, Any] | None], httpx.Response]


class Reference:
    """Labels and attribute metadata, fetched lazily through ``get``; ``name`` starts error messages."""

    def __init__(self, get: Get, *, name: str, locale: str, fallback_locale: str | None) -> None:
        self._get = get
        self._name = name
        self._locales = tuple(dict.fromkeys(x for x in (locale, fallback_locale) if x))
        self._families: dict[str, dict[str, Any]] | None = None
        self._categories: dict[str, dict[str, Any]] | None = None
        self._attributes: dict[str, dict[str, Any]] = {}
        self._options: dict[str, dict[str, dict[str, Any]]] = {}
        self._missing: set[tuple[str, str]] = set()  # (list, code) not found after a fresh read: not asked again

    # -- what products ask for ---------------------------------------------------------------------------------------

    def family_label(self, code: str) -> str:
        self._families = self._fresh(self._families, code, "/api/rest/v1/families")
        return self.label(self._families.get(code), code)

    def category_label(self, code: str) -> str:
        self._categories = self._fresh(self._categories, code, "/api/rest/v1/categories")
        return self.label(self._categories.get(code), code)

    def attribute_type(self, code: str) -> str | None:
        """``pim_catalog_simpleselect``, ``pim_catalog_text``...; None for an attribute the PIM does not have."""
        if code not in self._attributes:
            response = self._get(f"/api/rest/v1/attributes/{code}", None)
            if response.status_code == 404:
                self._attributes[code] = {}
            else:
                self._attributes[code] = self._json(response)
        kind = self._attributes[code].get("type")
        return kind if isinstance(kind, str) else None

    def option_label(self, attribute: str, code: str) -> str:
        path = f"/api/rest/v1/attributes/{attribute}/options"
        options = self._options[attribute] = self._fresh(self._options.get(attribute), code, path)
        return self.label(options.get(code), code)

    def label(self, entity: Mapping[str, Any] | None, code: str) -> str:
        labels = (entity or {}).get("labels") or {}
        if isinstance(labels, Mapping):
            for locale in self._locales:
                text = labels.get(locale)
                if isinstance(text, str) and text.strip():
                    return text
        return code

    # -- reading lists -----------------------------------------------------------------------------------------------

    def _fresh(self, known: dict[str, dict[str, Any]] | None, code: str, path: str) -> dict[str, dict[str, Any]]:
        """The list at ``path``: read once, and again when ``code`` is new to it (once per unknown code)."""
        if known is not None and (code in known or (path, code) in self._missing):
            return known
        fresh = self._all(path)
        if code not in fresh:
            self._missing.add((path, code))
        return fresh

    def _all(self, path: str) -> dict[str, dict[str, Any]]:
        """Every item of a paginated list, by code, following ``_links.next``."""
        items: dict[str, dict[str, Any]] = {}
        for page in self._pages(path):
            for item in page:
                if isinstance(item, dict) and isinstance(item.get("code"), str):
                    items[item["code"]] = item
        return items

    def _pages(self, path: str) -> Iterator[list[Any]]:
        url: str | None = path
        params: Mapping[str, Any] | None = {"limit": 100}
        while url is not None:
            response = self._get(url, params)
            body = self._json(response)
            yield list((body.get("_embedded") or {}).get("items") or [])
            url, params = (body.get("_links") or {}).get("next", {}).get("href"), None

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            raise SourceError(f"{self._name}: {describe(response)}")
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"{self._name}: {describe(response)} is not JSON") from None
        if not isinstance(body, dict):
            raise SourceError(f"{self._name}: {describe(response)} is not a JSON object")
        return body
