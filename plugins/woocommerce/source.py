"""The ``woocommerce`` source: customers, orders (with refunds) and products from the WooCommerce REST API (wc/v3).

**Orders and products** are read incrementally: ``modified_after`` (exclusive, whole seconds, so hub asks for one
second before its cursor) with ``dates_are_gmt=true``, ``orderby=modified`` and ``order=asc`` (WooCommerce breaks
ties by id). The cursor is an :class:`hub.cursors.IncrementalCursor` on ``date_modified_gmt``: it keeps the ids
read at its last second, so records sharing that second are neither lost nor read twice. Pages are walked as
:mod:`hub_plugins.woocommerce.listing` describes, which survives rows moving while hub reads. Then the trash
(``status=trash``) is read the same way from its own cursor: a trashed order or product comes as a tombstone.
Change times are whole seconds, so a record changed twice within the second hub read it in would look read: a
finished read's cursor therefore stops a second short of the server's clock (its ``Date``), and the next read
takes the records of that last second again (an idempotent upsert each) rather than risk missing one.

**Customers** have no changed-since filter, so the stream reads them all (``orderby=id``), at most every
``customer_scan_every`` (webhooks carry the changes in between), and yields only those whose
``date_modified_gmt`` (WooCommerce's ``last_update``, set on every save) is past the cursor: unchanged customers
cost neither a write nor a yield. The ids seen are kept in the cursor as ranges; an id gone since the last full
read is asked for once (``customers/<id>``) and, if WooCommerce answers 404, becomes a tombstone. A customer
changed while the read is under way, at an id already passed, would be missed if the cursor moved past its change
time, so the cursor never moves past the moment the read began (the server's ``Date``).

Every batch is one page and carries the whole stream cursor, so a read killed mid-way resumes at the next row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog

from hub import Batch, CheckResult, ConnectorContext, Source, SourceError, Stream
from hub.cursors import IncrementalCursor
from hub.sources.http import SourceHttp
from hub_plugins.woocommerce import idranges
from hub_plugins.woocommerce.errors import api_error, error_code
from hub_plugins.woocommerce.listing import walk
from hub_plugins.woocommerce.oauth import auth_for, resolved_mode
from hub_plugins.woocommerce.records import (
    Raw,
    check,
    error_record,
    format_gmt,
    id_key,
    modified_key,
    normalise,
    parse_gmt,
    tombstone,
)
from hub_plugins.woocommerce.settings import WooCommerceSettings
from hub_plugins.woocommerce.webhooks import WebhookDesk

log = structlog.get_logger("hub_plugins.woocommerce")

_DESCRIPTIONS = {
    "customers": "customers (all read at most every customer_scan_every; changed ones yielded; deletions)",
    "orders": "orders with lines, coupons and refunds (modified_after); trashed orders as deletions",
    "products": "products: SKU, price, stock, categories, brands (modified_after); trashed ones as deletions",
}
_SECOND = timedelta(seconds=1)


class WooCommerceSource(Source):
    """A WooCommerce shop read through its REST API (see the module docstring and the plugin README)."""

    type = "woocommerce"
    roles = ("source",)
    Settings = WooCommerceSettings
    description = "WooCommerce REST API (wc/v3): customers, orders with refunds, products; webhooks"

    settings: WooCommerceSettings

    def __init__(self, settings: WooCommerceSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._http: SourceHttp | None = None
        self.webhooks = WebhookDesk(settings, name=context.name)
        self.max_body_bytes = settings.max_body_bytes

    @property
    def http(self) -> SourceHttp:
        if self._http is None:
            settings = self.settings
            auth = auth_for(
                settings.auth,
                str(settings.base_url),
                settings.consumer_key,
                settings.consumer_secret.get_secret_value(),
                settings.signature_method,
            )
            self._http = SourceHttp(
                settings.api_url() + "/",
                name=self.name,
                auth=auth,
                headers={"Accept": "application/json"},
                timeout=settings.timeout,
                rate_limit=settings.rate_limit,
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------------------------------------ the contract

    def streams(self) -> dict[str, Stream]:
        return {
            name: Stream(name=name, key="id", cursor_field="date_modified_gmt", description=_DESCRIPTIONS[name])
            for name in self.settings.streams
        }

    def check(self) -> CheckResult:
        settings = self.settings
        mode = resolved_mode(settings.auth, str(settings.base_url))
        try:
            response = self.http.get(settings.streams[0], params={"per_page": 1})
        except SourceError as exc:
            return CheckResult(ok=False, message=f"cannot reach the shop at {settings.base_url}: {exc}")
        if response.status_code != 200:
            return CheckResult(ok=False, message=f"the shop at {settings.base_url} refused hub: {api_error(response)}")
        total = response.headers.get("x-wp-total", "?")
        how = {"basic": "HTTP Basic", "query": "query-string keys", "oauth1": "OAuth 1.0a signatures"}[mode]
        return CheckResult(
            ok=True,
            message=(
                f"connected to the WooCommerce API at {settings.api_url()} with {how}; "
                f"{settings.streams[0]}: {total} records; streams: {', '.join(settings.streams)}"
            ),
        )

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        if stream not in self.settings.streams:
            raise SourceError(f"{self.name}: no stream {stream!r}; this connector reads {self.settings.streams}")
        if stream == "customers":
            yield from self._read_customers(dict(cursor or {}))
        else:
            yield from self._read_changed(stream, dict(cursor or {}))

    # ------------------------------------------------------------------------------------------ the webhook side

    def handshake(self, raw_body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
        return self.webhooks.handshake(raw_body, headers)

    def verify(self, raw_body: bytes, headers: Mapping[str, str]) -> bool:
        return self.webhooks.verify(raw_body, headers)

    def topic(self, headers: Mapping[str, str]) -> str | None:
        return self.webhooks.topic(headers)

    def records(self, raw_body: bytes, headers: Mapping[str, str]) -> tuple[str, list[dict[str, Any]]]:
        return self.webhooks.records(raw_body, headers)

    # ------------------------------------------------------------------------------------------ orders, products

    def _read_changed(self, stream: str, state: dict[str, Any]) -> Iterator[Batch]:
        passes = [("live", None)] + ([("trash", "trash")] if self.settings.trash else [])
        for name, status in passes:
            part = dict(state.get(name) or {})
            cursor = IncrementalCursor.from_state(part.get("cursor"))
            params: dict[str, Any] = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true"}
            if status is not None:
                params["status"] = status
            start = cursor.start_value
            if isinstance(start, datetime):
                params["modified_after"] = format_gmt(start - _SECOND)  # exclusive: one second before
            pages = walk(
                self.http, stream, params, key_of=modified_key, per_page=self.settings.page_size, state=part.get("walk")
            )
            for page in pages:
                records = self._take(page.rows, cursor, deleted=status == "trash")
                if stream == "orders" and self.settings.refunds:
                    self._complete_refunds(records)
                if page.done:
                    state[name] = {"cursor": _settled(cursor.completed_state(), page.server_time)}
                else:
                    state[name] = {"cursor": cursor.state(), "walk": page.state}
                yield Batch(records, _copy(state))

    def _take(self, rows: list[Raw], cursor: IncrementalCursor, *, deleted: bool = False) -> list[Raw]:
        """The records of a page that are new to ``cursor`` (observed), bad rows as error records."""
        records: list[Raw] = []
        for row in rows:
            why = check(row)
            if why is not None:
                records.append(error_record(row, why))
                continue
            moment = parse_gmt(row.get("date_modified_gmt"))
            if moment is not None:
                value = cursor.parse(moment)
                key = str(row["id"])
                assert value is not None
                if not cursor.accepts(value, key):
                    continue
                cursor.observe(value, key)
            records.append(tombstone(row) if deleted else normalise(row))
        return records

    def _complete_refunds(self, records: list[Raw]) -> None:
        """Replace each refunded order's refund summaries with the refunds themselves (lines, dates)."""
        for record in records:
            summaries = record.get("refunds")
            if record.get("_deleted") or "_error" in record or not isinstance(summaries, list) or not summaries:
                continue
            response = self.http.get(f"orders/{record['id']}/refunds", params={"per_page": 100})
            if response.status_code == 404:  # deleted since the page was read: keep the summaries
                continue
            if response.status_code != 200:
                raise SourceError(f"{self.name}: {api_error(response)}")
            refunds = {r["id"]: r for r in response.json() if isinstance(r, dict) and isinstance(r.get("id"), int)}
            record.update(normalise(record, refunds))

    # ------------------------------------------------------------------------------------------ customers

    def _read_customers(self, state: dict[str, Any]) -> Iterator[Batch]:
        scan = state.get("walk")
        if scan is None and not self._scan_due(state):
            return
        cursor = IncrementalCursor.from_state(state.get("cursor"))
        scan = dict(scan or {"seen": []})
        if not scan.get("done"):
            params = {"orderby": "id", "order": "asc", "role": self.settings.customer_role}
            pages = walk(
                self.http, "customers", params, key_of=id_key, per_page=self.settings.page_size, state=scan.get("page")
            )
            for page in pages:
                if scan.get("started") is None and page.server_time is not None:
                    scan["started"] = page.server_time.astimezone(UTC).isoformat()
                records = self._take(page.rows, cursor)
                scan["seen"] = _seen(scan.get("seen"), page.rows)
                scan.update(page=page.state, done=page.done)
                state.update(cursor=cursor.state(), walk=scan)
                yield Batch(records, _copy(state))
        gone = self._gone(state.get("ids"), scan.get("seen"))
        # Customers are listed by id, not by change: one passed early may have changed before the last one seen,
        # so the cursor may not pass the moment the read began.
        completed = _settled(cursor.completed_state(), parse_gmt(scan.get("started")))
        yield Batch(
            [{"id": ident, "_deleted": True} for ident in gone],
            {"cursor": completed, "ids": scan.get("seen"), "scanned_at": datetime.now(UTC).isoformat()},
        )

    def _scan_due(self, state: Mapping[str, Any]) -> bool:
        every = self.settings.customer_scan_every
        scanned = parse_gmt(state.get("scanned_at"))
        return not every or scanned is None or datetime.now(UTC) >= scanned + every

    def _gone(self, before: Any, now: Any) -> list[int]:
        """Customers of the last full read missing from this one that WooCommerce says are deleted (404)."""
        if not before or now is None:
            return []
        gone = []
        for ident in idranges.missing(before, now):
            response = self.http.get(f"customers/{ident}")
            if response.status_code == 404 or error_code(response) == "woocommerce_rest_invalid_id":
                gone.append(ident)
            elif response.status_code != 200:
                raise SourceError(f"{self.name}: {api_error(response)}")
        return gone


def _settled(completed: dict[str, Any], server_time: datetime | None) -> dict[str, Any]:
    """A completed cursor that does not pass ``server_time`` less a second.

    Change times are whole seconds: a record read in second S and changed again within S keeps its change time,
    and a cursor holding it as read at S would never read it again. So the last second or two before the server's
    clock stay open: the next read takes the records changed since then again (an idempotent upsert each).
    """
    last = parse_gmt(completed.get("last_value"))
    if server_time is None or last is None:
        return completed
    settle = server_time.astimezone(UTC).replace(microsecond=0) - _SECOND
    if last < settle:
        return completed
    return {"last_value": settle.isoformat(), "last_keys": []}


def _seen(ranges: Any, rows: list[Raw]) -> list[list[int]] | None:
    """The id ranges seen so far, with this page's rows; None once too many to keep (deletions then go unseen)."""
    if ranges is None:
        return None
    kept: list[list[int]] = [list(r) for r in ranges]
    try:
        for key in map(id_key, rows):
            if key is not None:
                idranges.add(kept, key[0])
    except ValueError:
        return None
    if len(kept) > idranges.MAX_RANGES:
        log.warning("too many customer id ranges to keep: deletions are not detected", ranges=len(kept))
        return None
    return kept


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    """A snapshot of the cursor for one batch (later pages change the live one)."""
    snapshot: dict[str, Any] = orjson.loads(orjson.dumps(state))
    return snapshot
