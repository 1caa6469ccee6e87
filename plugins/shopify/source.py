"""The ``shopify`` source: customers, orders, products, abandoned checkouts and inventory from the GraphQL Admin API.

A stream's first read is one bulk operation (``first_load: bulk``) whose JSONL result is streamed; every later
read asks for ``updated_at:>=`` the saved cursor, page by page (:mod:`hub_plugins.shopify.cursor` says how the
cursor moves and why nothing at its boundary is lost or read twice). Each page's cost is paced against Shopify's
bucket (:mod:`hub_plugins.shopify.client`). Records are rewritten into one REST-shaped raw record per stream
(:mod:`hub_plugins.shopify.normalise`), the shape webhooks arrive in, so one mapping serves both; the webhook side
(``hub run``'s ``POST /webhooks/<name>``) is :mod:`hub_plugins.shopify.webhooks`.

Deletions: products report them (``deletionEvents``), read after the product pages and yielded as tombstones
``{"_deleted": true, "id": ...}``; the other streams' read path reports none (see the plugin README).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from hub import Batch, CheckResult, ConnectorContext, Source, SourceError, Stream
from hub.sources.http import SourceHttp
from hub_plugins.shopify import queries
from hub_plugins.shopify.bulk import BulkExpired, BulkRunner, BulkUnavailable, Operation, assemble
from hub_plugins.shopify.client import ShopifyAuthError, ShopifyGraphQL
from hub_plugins.shopify.cursor import Boundary, Ordered, Unordered, format_time, parse_time
from hub_plugins.shopify.normalise import NODE_CONVERTERS, Raw, error_record, guarded, legacy_id
from hub_plugins.shopify.settings import ShopifySettings
from hub_plugins.shopify.webhooks import WebhookDesk

log = structlog.get_logger("hub_plugins.shopify")
DEFAULT_BATCH_SIZE = 5000

_DESCRIPTIONS = {
    "customers": "customers with e-mail and SMS marketing consent (GraphQL customers)",
    "orders": "orders with lines, discounts and refunds (GraphQL orders)",
    "products": "products and variants: SKU, product type, vendor, tags; deletions as tombstones",
    "checkouts": "abandoned checkouts with their lines (GraphQL abandonedCheckouts)",
    "inventory": "inventory items with their available quantity per location (GraphQL inventoryItems)",
}


class ShopifySource(Source):
    """A Shopify shop read through the GraphQL Admin API (see the module docstring and the plugin README)."""

    type = "shopify"
    roles = ("source",)
    Settings = ShopifySettings
    description = "Shopify GraphQL Admin API: customers, orders, products, abandoned checkouts, inventory; webhooks"

    settings: ShopifySettings

    def __init__(self, settings: ShopifySettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._api: ShopifyGraphQL | None = None
        self._download: SourceHttp | None = None
        self.webhooks = WebhookDesk(settings, name=context.name, fetch_order=self._fetch_order)

    # ------------------------------------------------------------------------------------------ the contract

    def streams(self) -> dict[str, Stream]:
        return {
            name: Stream(name=name, key="id", cursor_field="updated_at", description=_DESCRIPTIONS[name])
            for name in self.settings.streams
        }

    def check(self) -> CheckResult:
        origin = self.settings.origin()
        try:
            shop = self.api.execute(queries.SHOP).get("shop") or {}
        except ShopifyAuthError as exc:
            return CheckResult(ok=False, message=str(exc))
        except SourceError as exc:
            return CheckResult(ok=False, message=f"cannot read the shop at {origin}: {exc}")
        lines = [
            f"connected to {shop.get('name') or 'the shop'} ({shop.get('myshopifyDomain') or origin}), "
            f"Admin API {self.settings.api_version}; the access token works",
            f"streams: {', '.join(self.settings.streams)}; first load: {self.settings.first_load}",
        ]
        if self.settings.webhook_secret is None:
            lines.append("webhooks: no webhook_secret, so hub run refuses every delivery to /webhooks/" + self.name)
        else:
            lines.append(f"webhooks: verified with webhook_secret at hub run's /webhooks/{self.name}")
        return CheckResult(ok=True, message="\n".join(lines))

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        if stream not in self.settings.streams:
            raise SourceError(f"connector {self.name!r} has no stream {stream!r}; it has: {', '.join(self.streams())}")
        if cursor is not None and not isinstance(cursor, dict):
            raise SourceError(f"{self.name}.{stream}: the saved cursor is not a Shopify cursor; reset the stream")
        state: dict[str, Any] = dict(cursor or {})
        if "bulk" in state or (cursor is None and self.settings.first_load == "bulk"):
            try:
                yield from self._read_bulk(stream, state)
                return
            except BulkUnavailable as exc:
                log.warning("bulk read unavailable; reading pages", connector=self.name, stream=stream, why=str(exc))
                state = {}
        yield from self._read_pages(stream, state)

    # ------------------------------------------------------------------------------------------ webhooks

    @property
    def max_body_bytes(self) -> int:
        return self.settings.max_body_bytes

    def verify(self, raw_body: bytes, headers: Mapping[str, str]) -> bool:
        return self.webhooks.verify(raw_body, headers)

    def topic(self, headers: Mapping[str, str]) -> str | None:
        return self.webhooks.topic(headers)

    def records(self, raw_body: bytes, headers: Mapping[str, str]) -> tuple[str, list[dict[str, Any]]]:
        return self.webhooks.records(raw_body, headers)

    def acknowledge(self, headers: Mapping[str, str]) -> None:
        self.webhooks.acknowledge(headers)

    # ------------------------------------------------------------------------------------------ clients

    @property
    def api(self) -> ShopifyGraphQL:
        if self._api is None:
            self._api = ShopifyGraphQL(self.settings, name=self.name)
        return self._api

    def _runner(self) -> BulkRunner:
        if self._download is None:
            # The result lives on another host: this client carries no access token.
            self._download = SourceHttp(self.settings.origin(), name=self.name, timeout=self.settings.timeout)
        return BulkRunner(
            self.api,
            self._download,
            poll_interval=self.settings.bulk_poll_interval,
            timeout=self.settings.bulk_timeout.total_seconds(),
        )

    def close(self) -> None:
        for client in (self._api, self._download):
            if client is not None:
                client.close()

    def _batch_size(self) -> int:
        return max(1, int(self.context.extra.get("batch_size", DEFAULT_BATCH_SIZE)))

    def _server_now(self) -> datetime:
        seen = self.api.server_time
        return datetime.fromtimestamp(seen, UTC) if seen is not None else datetime.now(UTC)

    # ------------------------------------------------------------------------------------------ bulk

    def _read_bulk(self, stream: str, state: dict[str, Any]) -> Iterator[Batch]:
        spec = queries.STREAMS[stream]
        runner = self._runner()
        saved = state.get("bulk") or {}
        operation: Operation | None = None
        skip = 0
        if saved:
            try:
                operation, skip = runner.wait(saved["id"]), int(saved.get("lines", 0))
            except BulkExpired:
                log.info("bulk result gone; starting again", connector=self.name, stream=stream)
        yielded = False
        for attempt in range(2):
            if operation is None:
                operation, skip, saved = runner.wait(runner.start(spec.bulk()).id), 0, {}
            tracker = Unordered(Boundary(None, self.settings.lag), saved.get("run"))
            tracker.begin(parse_time(operation.created_at))
            try:
                for batch in self._bulk_batches(stream, runner, operation, skip, tracker):
                    yielded = True
                    yield batch
                return
            except BulkExpired:
                if yielded or attempt:
                    raise SourceError(
                        f"{self.name}.{stream}: the bulk result expired while it was read; sync again"
                    ) from None
                # A resumed read whose result is gone: a new operation reads everything again (loads are upserts).
                log.info("bulk result expired; starting again", connector=self.name, stream=stream)
                operation = None

    def _bulk_batches(
        self, stream: str, runner: BulkRunner, operation: Operation, skip: int, tracker: Unordered
    ) -> Iterator[Batch]:
        spec = queries.STREAMS[stream]
        child = spec.nested[0].field if spec.nested else None
        lines = runner.lines(operation.url, skip) if operation.url else iter(())
        pending: list[Raw] = []
        for node, end in assemble(lines, child):
            pending.append(node)
            if len(pending) >= self._batch_size():
                records = self._finish_bulk_nodes(stream, pending, tracker)
                yield Batch(records=records, cursor={"bulk": {"id": operation.id, "lines": end, "run": tracker.run()}})
                pending = []
        records = self._finish_bulk_nodes(stream, pending, tracker)
        final = tracker.final()
        if stream == "products":
            final["deleted"] = {"updated_at": final.get("updated_at"), "ids": []}
        yield Batch(records=records, cursor=final)

    def _finish_bulk_nodes(self, stream: str, nodes: list[Raw], tracker: Unordered) -> list[Raw]:
        if stream == "orders":
            self._add_refund_lines(nodes)
        convert = NODE_CONVERTERS[stream]
        records = []
        for node in nodes:
            if "_bulk_error" in node:
                records.append({"_error": node["_bulk_error"], "_raw": node["_line"]})
                continue
            record = guarded(stream, convert, node)
            if "_error" not in record:
                tracker.observe(parse_time(record["updated_at"]), record["id"])
            records.append(record)
        return records

    def _add_refund_lines(self, nodes: list[Raw]) -> None:
        """A bulk query cannot nest refund lines (a connection in a list): fetch them by refund id, 25 a query."""
        wanted = [refund["id"] for node in nodes for refund in node.get("refunds") or [] if refund.get("id")]
        found: dict[str, Raw] = {}
        for start in range(0, len(wanted), queries.REFUND_BATCH):
            ids = wanted[start : start + queries.REFUND_BATCH]
            for refund in self.api.execute(queries.REFUND_LINES, {"ids": ids}).get("nodes") or []:
                if refund:
                    self._complete(refund, "Refund", queries.REFUND_LINES_NESTED)
                    found[refund["id"]] = refund
        for node in nodes:
            for refund in node.get("refunds") or []:
                lines = found.get(refund.get("id"), {}).get("refundLineItems")
                refund["refundLineItems"] = lines or {"nodes": []}

    # ------------------------------------------------------------------------------------------ pages

    def _read_pages(self, stream: str, state: dict[str, Any]) -> Iterator[Batch]:
        spec = queries.STREAMS[stream]
        start = Boundary(state, self.settings.lag)
        if spec.sort_key:
            yield from self._read_sorted(stream, spec, start, state)
        else:
            yield from self._read_unsorted(stream, spec, start, state)

    def _read_sorted(
        self, stream: str, spec: queries.StreamQuery, start: Boundary, state: dict[str, Any]
    ) -> Iterator[Batch]:
        position = Ordered(start)
        deleted = state.get("deleted")
        pending: list[Raw] = []
        for _, record in self._records(stream, spec, start.search(), None):
            if "_error" not in record:
                moment, key = parse_time(record["updated_at"]), str(record["id"])
                if not start.accepts(moment, key):
                    continue
                position.observe(moment, key)
            pending.append(record)
            if len(pending) >= self._batch_size():
                yield Batch(records=pending, cursor=self._with(position.state(), deleted))
                pending = []
        if stream == "products":
            if deleted is None:  # the first read: deletions after the newest product read, not the shop's history
                deleted = {"updated_at": position.state().get("updated_at"), "ids": []}
            else:
                for tombstones, after in self._deletions(Boundary(deleted)):
                    pending.extend(tombstones)
                    deleted = after
                    if len(pending) >= self._batch_size():
                        yield Batch(records=pending, cursor=self._with(position.state(), deleted))
                        pending = []
        final = self._with(position.state(), deleted)
        if pending or final != state:
            yield Batch(records=pending, cursor=final)

    @staticmethod
    def _with(cursor: dict[str, Any], deleted: dict[str, Any] | None) -> dict[str, Any]:
        return {**cursor, "deleted": deleted} if deleted is not None else cursor

    def _read_unsorted(
        self, stream: str, spec: queries.StreamQuery, start: Boundary, state: dict[str, Any]
    ) -> Iterator[Batch]:
        run = state.get("run")
        tracker = Unordered(start, run)
        after = (run or {}).get("after")
        pending: list[Raw] = []
        for edge_cursor, record in self._records(stream, spec, start.search(), after):
            tracker.begin(self._server_now())
            after = edge_cursor
            if "_error" not in record:
                moment, key = parse_time(record["updated_at"]), str(record["id"])
                if not start.accepts(moment, key):
                    continue
                tracker.observe(moment, key)
            pending.append(record)
            if len(pending) >= self._batch_size():
                cursor = {**start.state(), "run": {**tracker.run(), "after": after}}
                yield Batch(records=pending, cursor=cursor)
                pending = []
        final = tracker.final()
        if pending or final != state:
            yield Batch(records=pending, cursor=final)

    def _records(
        self, stream: str, spec: queries.StreamQuery, search: str | None, after: str | None
    ) -> Iterator[tuple[str, Raw]]:
        """``(edge cursor, raw record)`` of every page of ``spec`` matching ``search``, nested lists completed."""
        convert = NODE_CONVERTERS[stream]
        page_size = self.settings.page_size or spec.page_size
        while True:
            variables = {"first": page_size, "after": after, "query": search}
            connection = self.api.execute(spec.page(), variables).get(spec.root) or {}
            for edge in connection.get("edges") or []:
                node = edge.get("node")
                try:
                    self._complete_node(spec, node)
                except (KeyError, TypeError, AttributeError) as exc:
                    yield edge.get("cursor"), error_record(stream, node, exc)
                    continue
                yield edge.get("cursor"), guarded(stream, convert, node)
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")
            if not after:
                raise SourceError(f"{self.name}.{stream}: Shopify said there is a next page but gave no cursor")

    def _complete_node(self, spec: queries.StreamQuery, node: Raw) -> None:
        for nested in spec.nested:
            self._complete(node, spec.node_type, nested)
        if spec.root == "orders":
            for refund in node.get("refunds") or []:
                self._complete(refund, "Refund", queries.REFUND_LINES_NESTED)

    def _complete(self, node: Raw, node_type: str, nested: queries.Nested) -> None:
        """Fetch the rest of ``node``'s nested connection when it is longer than the page carried."""
        connection = node.get(nested.field)
        if not connection:
            return
        info = connection.get("pageInfo") or {}
        while info.get("hasNextPage"):
            variables = {"id": node["id"], "after": info.get("endCursor")}
            data = self.api.execute(queries.connection_page(node_type, nested), variables).get("node") or {}
            more = data.get(nested.field) or {}
            connection.setdefault("nodes", []).extend(more.get("nodes") or [])
            info = more.get("pageInfo") or {}

    def _deletions(self, start: Boundary) -> Iterator[tuple[list[Raw], dict[str, Any]]]:
        """Tombstones of products deleted since ``start``, page by page, with the deletions cursor after each."""
        position = Ordered(start)
        after: str | None = None
        search = None if start.value is None else f"occurred_at:>='{format_time(start.value)}'"
        while True:
            variables = {"first": 250, "after": after, "query": search}
            connection = self.api.execute(queries.DELETIONS, variables).get("deletionEvents") or {}
            tombstones: list[Raw] = []
            for event in connection.get("nodes") or []:
                key = legacy_id(event.get("subjectId")) or ""
                moment = parse_time(event["occurredAt"])
                if not start.accepts(moment, key):
                    continue
                position.observe(moment, key)
                tombstones.append({"_deleted": True, "id": key, "deleted_at": event["occurredAt"]})
            yield tombstones, position.state()
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")

    # ------------------------------------------------------------------------------------------ refunds/create

    def _fetch_order(self, order_id: str) -> Raw:
        """The whole current order a ``refunds/create`` webhook names, as the orders stream reads it."""
        spec = queries.STREAMS["orders"]
        gid = order_id if order_id.startswith("gid://") else f"gid://shopify/Order/{order_id}"
        node = self.api.execute(spec.node(), {"id": gid}).get("node")
        if not node:
            raise LookupError(f"order {order_id} is not in the shop (deleted?)")
        self._complete_node(spec, node)
        return guarded("orders", NODE_CONVERTERS["orders"], node)
