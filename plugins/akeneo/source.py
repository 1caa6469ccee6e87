"""The ``akeneo`` source: products and their associations from the Akeneo PIM REST API, read incrementally.

Both streams read ``GET /api/rest/v1/products-uuid`` with ``pagination_type=search_after`` (pages of
``page_size``, at most 100, followed through ``_links.next.href``) and, after the first read, the filter
``search={"updated":[{"operator":">","value":"<last updated - 1 s>"}]}`` in the server's time zone.

Search-after pages come in UUID order, not in ``updated`` order, so the cursor cannot move while a read is under
way: each batch's cursor keeps the read's starting point (``hub.cursors.IncrementalCursor`` state), the
``search_after`` token of the next page and the read's *horizon*; only the last page moves the starting point up
to the latest ``updated`` seen. Products at the starting point already read (their UUIDs are in the cursor) are
skipped, so products sharing a timestamp are neither lost nor read twice. Products changed at or after the horizon
(``settle`` before the server's clock at the read's first page) are read but do not move the cursor: a product
changed during the read, behind the page being read, or one Akeneo's search index has not caught up with, is
read again next time instead of being passed over by a later change. A variant whose parent model changed comes
with its own older ``updated``; it is read (its inherited values changed) and leaves the cursor alone.

Akeneo reports no deletions on its REST API (only its Event Platform does), so neither stream has tombstones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx

from hub import Batch, CheckResult, ConnectorContext, Source, SourceError, Stream
from hub.cursors import IncrementalCursor
from hub.sources.http import SourceHttp, describe
from hub_plugins.akeneo.auth import AkeneoAuth
from hub_plugins.akeneo.records import BadProduct, Flattener, updated_of, uuid_of
from hub_plugins.akeneo.reference import Reference
from hub_plugins.akeneo.settings import AkeneoSettings

PRODUCTS = "/api/rest/v1/products-uuid"
ASSOCIATION_TYPES = "/api/rest/v1/association-types"
SEARCH_FORMAT = "%Y-%m-%d %H:%M:%S"  # Akeneo's datetime filter format, in the server's time zone
LOOKUP_CHUNK = 100  # UUIDs per ``uuid IN`` search (a page holds at most 100)
_SECOND = timedelta(seconds=1)

Page = list[dict[str, Any]]


class AkeneoSource(Source):
    """Products (with group, category, brand and price) and their accessory associations, from Akeneo's REST API."""

    type = "akeneo"
    Settings = AkeneoSettings
    description = "Akeneo PIM REST API: products, and the associations that make accessory relations"
    settings: AkeneoSettings

    def __init__(self, settings: AkeneoSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        base = settings.url()
        self.auth = AkeneoAuth(
            base_path=httpx.URL(base).path,
            client_id=settings.client_id,
            secret=settings.secret.get_secret_value(),
            username=settings.username,
            password=settings.password.get_secret_value(),
        )
        self.http = SourceHttp(
            base,
            name=context.name,
            headers={"Accept": "application/json"},
            auth=self.auth,
            timeout=settings.timeout,
            rate_limit=settings.rate_limit,
        )
        self.reference = Reference(
            self._get, name=context.name, locale=settings.locale, fallback_locale=settings.fallback_locale
        )
        self.flatten = Flattener(settings, self.reference)
        self._server_zone = ZoneInfo(settings.server_timezone)
        self._skus: dict[str, str | None] = {}  # product UUID -> SKU (None: no such product), for relations

    def streams(self) -> dict[str, Stream]:
        return {
            "products": Stream(
                "products",
                key="uuid",
                cursor_field="updated",
                description="products, flattened: sku, name, product_group, category, brand, price, is_accessory",
            ),
            "relations": Stream(
                "relations",
                key="sku",
                cursor_field="updated",
                description="per changed product, every product it is associated with by the configured types",
            ),
        }

    # -- check --------------------------------------------------------------------------------------------------------

    def check(self) -> CheckResult:
        url = self.settings.url()
        try:
            types = self._association_types()
        except SourceError as exc:
            if self.auth.refusal is not None:
                return CheckResult(
                    False,
                    f"the PIM at {url} refused the API connection ({self.auth.refusal}); "
                    "check client_id, secret, username and password",
                )
            return CheckResult(False, f"cannot read the PIM at {url}: {exc}")
        missing = [code for code in self.settings.associations if code not in types]
        if missing:
            have = ", ".join(sorted(types)) or "none"
            return CheckResult(
                False,
                f"the PIM at {url} has no association type {', '.join(missing)} (it has: {have}); "
                "set `associations` to the types that hold accessories",
            )
        kinds = ", ".join(f"{code} as {kind}" for code, kind in self.settings.associations.items())
        return CheckResult(True, f"the Akeneo PIM at {url} accepts the connection; associations read: {kinds}")

    def _association_types(self) -> set[str]:
        codes: set[str] = set()
        url: str | None = ASSOCIATION_TYPES
        params: dict[str, Any] | None = {"limit": 100}
        while url is not None:
            body = self._json(self._get(url, params))
            codes.update(item.get("code") for item in _items(body) if isinstance(item.get("code"), str))
            url, params = _next_href(body), None
        return codes

    # -- reading ------------------------------------------------------------------------------------------------------

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        if stream not in self.streams():
            raise SourceError(f"{self.name}: no stream {stream!r}; the akeneo source has products and relations")
        for page, position in self._pages(cursor):
            records = self._products(page) if stream == "products" else self._relations(page)
            yield Batch(records, position)

    def _pages(self, cursor: Mapping[str, Any] | None) -> Iterator[tuple[Page, dict[str, Any]]]:
        """Each page's products still to read (good ones as they came, bad ones as error records) with the cursor
        that resumes after it."""
        state = cursor or {}
        position = IncrementalCursor.from_state(state.get("position"), timezone=UTC)
        start = position.parse(position.start_value)
        horizon: datetime | None = datetime.fromisoformat(state["horizon"]) if state.get("horizon") else None
        params: dict[str, Any] | None = {"pagination_type": "search_after", "limit": self.settings.page_size}
        if isinstance(position.start_value, datetime):
            since = (position.start_value - _SECOND).astimezone(self._server_zone).strftime(SEARCH_FORMAT)
            params["search"] = json.dumps({"updated": [{"operator": ">", "value": since}]}, separators=(",", ":"))
        if state.get("after"):
            params["search_after"] = state["after"]
        url = PRODUCTS
        while True:
            response = self._get(url, params)
            body = self._json(response)
            if horizon is None:
                horizon = self._server_now(response) - self.settings.settle
            fresh = position.parse(horizon)
            assert fresh is not None
            page: Page = []
            for item in _items(body):
                try:
                    key, value = uuid_of(item), position.parse(updated_of(item))
                except BadProduct as exc:
                    page.append(_error_record(exc, item))
                    continue
                assert value is not None
                if start is not None and value >= start and not position.accepts(value, key):
                    continue  # read before, exactly at the starting point
                if (start is None or value >= start) and value < fresh:
                    position.observe(value, key)
                page.append(item)
            next_href = _next_href(body)
            if next_href is None:
                yield page, {"position": position.completed_state()}
                return
            after = parse_qs(urlsplit(next_href).query).get("search_after", [None])[0]
            yield page, {"position": position.state(), "after": after, "horizon": horizon.isoformat()}
            url, params = next_href, None

    def _products(self, page: Page) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for item in page:
            if "_error" in item:
                records.append(item)
                continue
            try:
                records.append(self.flatten.product(item))
            except BadProduct as exc:
                records.append(_error_record(exc, item))
        return records

    def _relations(self, page: Page) -> list[dict[str, Any]]:
        """One record per product with its complete current list of relations (empty when it has none)."""
        records: list[dict[str, Any]] = []
        pending: list[tuple[dict[str, Any], list[tuple[str, str, str]]]] = []
        for item in page:
            if "_error" in item:
                records.append(item)
                continue
            try:
                sku, associated = self.flatten.sku_of(item), self.flatten.associated(item)
            except BadProduct as exc:
                records.append(_error_record(exc, item))
                continue
            self._skus[item["uuid"]] = sku
            record = {
                "uuid": item["uuid"],
                "sku": sku,
                "updated": item.get("updated"),
                "relations": [],
                "unresolved": [],
            }
            records.append(record)
            pending.append((record, associated))
        self._resolve({related for _, associated in pending for _, _, related in associated})
        for record, associated in pending:
            for association, kind, related in associated:
                related_sku = self._skus.get(related)
                if related_sku is None:
                    record["unresolved"].append(related)
                else:
                    link = {
                        "related_sku": related_sku,
                        "related_uuid": related,
                        "kind": kind,
                        "association": association,
                    }
                    record["relations"].append(link)
        return records

    def _resolve(self, uuids: set[str]) -> None:
        """Learn the SKU of every UUID not known yet: ``search={"uuid":[{"operator":"IN",...}]}``, 100 at a time.

        A UUID the PIM no longer has (an association to a deleted product) is remembered as None.
        """
        unknown = sorted(u for u in uuids if u not in self._skus)
        for start in range(0, len(unknown), LOOKUP_CHUNK):
            chunk = unknown[start : start + LOOKUP_CHUNK]
            search = json.dumps({"uuid": [{"operator": "IN", "value": chunk}]}, separators=(",", ":"))
            params = {
                "search": search,
                "limit": LOOKUP_CHUNK,
                "attributes": self.settings.identifier_attribute,
                "pagination_type": "search_after",
            }
            body = self._json(self._get(PRODUCTS, params))
            for item in _items(body):
                try:
                    self._skus[uuid_of(item)] = self.flatten.sku_of(item)
                except BadProduct:
                    continue
            for uuid in chunk:
                self._skus.setdefault(uuid, None)

    # -- HTTP ---------------------------------------------------------------------------------------------------------

    def _get(self, url: str, params: Mapping[str, Any] | None) -> httpx.Response:
        response = self.http.get(url, params=dict(params) if params else None)
        if response.status_code == 401:
            raise SourceError(
                f"{self.name}: the PIM refused a fresh token ({describe(response)}); check the API user's rights"
            )
        if response.status_code == 403:
            raise SourceError(f"{self.name}: the API user may not read this ({describe(response)})")
        return response

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            raise SourceError(f"{self.name}: {describe(response)}")
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"{self.name}: {describe(response)} is not JSON") from None
        if not isinstance(body, dict):
            raise SourceError(f"{self.name}: {describe(response)} is not a JSON object")
        return body

    @staticmethod
    def _server_now(response: httpx.Response) -> datetime:
        """The server's clock (its ``Date`` header), else ours."""
        try:
            return parsedate_to_datetime(response.headers["date"]).astimezone(UTC)
        except (KeyError, TypeError, ValueError):
            return datetime.now(UTC)

    def close(self) -> None:
        self.http.close()


def _items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = (body.get("_embedded") or {}).get("items") or []
    return [item for item in items if isinstance(item, dict)]


def _next_href(body: Mapping[str, Any]) -> str | None:
    href = ((body.get("_links") or {}).get("next") or {}).get("href")
    return href if isinstance(href, str) and href else None


def _error_record(exc: BadProduct, item: Any) -> dict[str, Any]:
    return {"_error": str(exc), "_raw": json.dumps(item, ensure_ascii=False, default=str)}
