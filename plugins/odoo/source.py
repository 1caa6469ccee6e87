"""The ``odoo`` source: partners (B2B companies and their contacts), sales orders with their lines, and products
from Odoo, over JSON-2 (Odoo 19+) or JSON-RPC (older servers), read incrementally.

Every stream calls ``search_read`` on its model with::

    domain  = write_date >= S and (write_date >= S + 1 s or id not in <ids read at S>) and <the stream's domain>
    order   = "write_date asc, id asc",  limit = page_size,  offset = 0
    context = {"active_test": false}     (archived rows too: they are the tombstones)

where ``S`` is the last ``write_date`` second read. Each page continues from the previous one the same way (keyset,
not ``offset``: an offset skips rows when a row changes and moves to the end during the read), so every batch's
cursor, ``{"write_date": S, "ids": [...]}``, both resumes a killed read and starts the next one; rows that share a
second are neither lost nor read twice. Odoo keeps ``write_date`` to the microsecond but sends it to the second,
which is why the ids at ``S`` are kept rather than one ``(write_date, id)`` pair.

``partners`` rows get ``_person_name``: the name of a person, empty for a company (Odoo keeps one ``name`` for
both), so a mapping splits first and last names only for people.

``orders`` reads ``sale.order`` and then, per page, the ``sale.order.line`` rows of its orders (``lines``), each
with its product's internal reference as ``sku``. A line change stamps its order: the order's stored totals are
recomputed, and Odoo stamps ``write_date`` on a stored compute.

Deletions: a partner or product that is archived (``active = false``) is read as a tombstone, as is an order in a
state that is no sale (``order_states``: by default quotations and cancelled orders). A row deleted outright
(``unlink``) leaves no trace that ``search_read`` can see.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from hub import Batch, CheckResult, ConnectorContext, Source, SourceError, Stream
from hub.sources.http import SourceHttp
from hub_plugins.odoo.client import Json2, JsonRpc, OdooError, transient_rpc_error
from hub_plugins.odoo.records import (
    LINES,
    MODELS,
    ORDERS,
    PARTNERS,
    Model,
    Position,
    clean,
    error_record,
    ids_of,
    problem,
    tombstone,
)
from hub_plugins.odoo.settings import OdooSettings

ORDER = "write_date asc, id asc"
#: The models a stream reads, for check().
READS = {"partners": ("res.partner",), "orders": ("sale.order", "sale.order.line"), "products": ("product.product",)}


class OdooSource(Source):
    """Partners, sales orders with lines, and products from Odoo's external API."""

    type = "odoo"
    Settings = OdooSettings
    description = "Odoo (JSON-2 on 19+, JSON-RPC before): partners incl. B2B contacts, sales orders, products"
    settings: OdooSettings

    def __init__(self, settings: OdooSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        key = settings.api_key.get_secret_value()
        headers = {"Accept": "application/json", "User-Agent": "hub (odoo source)"}
        if settings.protocol == "json2":
            headers["Authorization"] = f"bearer {key}"
            if settings.database:
                headers["X-Odoo-Database"] = settings.database
        self.http = SourceHttp(
            settings.url(),
            name=context.name,
            headers=headers,
            timeout=settings.timeout,
            rate_limit=settings.rate_limit,
            throttle=transient_rpc_error if settings.protocol == "jsonrpc" else None,
        )
        self.client: Json2 | JsonRpc
        if settings.protocol == "json2":
            self.client = Json2(self.http)
        else:
            assert settings.database and settings.username  # the settings' validator says so
            self.client = JsonRpc(self.http, database=settings.database, login=settings.username, key=key)
        self._company_partners: list[int] | None = None
        self._skus: dict[int, str | None] = {}

    def streams(self) -> dict[str, Stream]:
        return {name: MODELS[name].as_stream() for name in self.settings.streams}

    # -- check --------------------------------------------------------------------------------------------------------

    def check(self) -> CheckResult:
        where = f"Odoo at {self.settings.url()}" + (
            f" (database {self.settings.database})" if self.settings.database else ""
        )
        models = [m for stream in self.settings.streams for m in READS[stream]]
        model = None
        try:
            version = self.client.version()
            if self.settings.protocol == "json2" and _major(version) < 19:
                return CheckResult(False, f"{where} runs Odoo {version}, which has no JSON-2 API (19.0 brought it); "
                                   "set protocol: jsonrpc")  # fmt: skip
            who = self.client.whoami()
            for model in models:
                self.client.call(model, "search_count", domain=[])
        except OdooError as exc:
            if exc.auth:
                fix = "check username, api_key and database" if self.settings.protocol == "jsonrpc" else "check api_key"
                return CheckResult(False, f"{where} refused the credentials ({exc}); {fix}")
            if exc.access and model is not None:
                return CheckResult(False, f"{where}: the API user may not read {model} ({exc}); grant it read access")
            return CheckResult(False, f"{where} answered {exc}" + (f" when counting {model}" if model else ""))
        except SourceError as exc:
            return CheckResult(False, str(exc).removeprefix(f"{self.name}: "))
        return CheckResult(
            True,
            f"{where}, version {version}, accepts {who} over {self.settings.protocol}; it may read {', '.join(models)}",
        )

    # -- reading ------------------------------------------------------------------------------------------------------

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        if stream not in self.settings.streams:
            raise SourceError(
                f"{self.name}: no stream {stream!r}; this connector reads {', '.join(self.settings.streams)}"
            )
        model = MODELS[stream]
        position = Position.from_cursor(cursor)
        extra = [*self.settings.domains.get(stream, []), *self._exclusions(stream)]  # type: ignore[call-overload]
        fields = list(dict.fromkeys([*model.fields, *self.settings.extra_fields.get(stream, [])]))  # type: ignore[call-overload]
        lag = self.settings.lag
        while True:
            rows = self._call(
                model.model,
                "search_read",
                domain=[*position.domain(lag), *extra],
                fields=fields,
                limit=self.settings.page_size,
                offset=0,
                order=ORDER,
                context={"active_test": False},
            )
            if not isinstance(rows, list):
                raise SourceError(f"{self.name}: {model.model}.search_read did not answer a list")
            yield Batch(self._records(model, rows, position), position.cursor())
            if len(rows) < self.settings.page_size:
                return
            lag = timedelta(0)  # only the first page of a read goes back

    def _records(self, model: Model, rows: list[Any], position: Position) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for row in rows:
            reason = problem(model, row)
            if reason is not None:
                if isinstance(row, dict) and isinstance(row.get("id"), int):
                    position.broken.add(row["id"])  # not asked for again in this read
                records.append(error_record(reason, row))
                continue
            position.observe(row["write_date"], row["id"])
            record = clean(row, model.booleans)
            if model is PARTNERS:  # Odoo keeps one name: a person's, or the company's
                record["_person_name"] = None if record.get("is_company") else record.get("name")
            records.append(record)
        if model is ORDERS:
            self._attach_lines([r for r in records if "_error" not in r])
        return [self._judged(model, r) for r in records]

    def _judged(self, model: Model, record: dict[str, Any]) -> dict[str, Any]:
        if "_error" in record:
            return record
        if model is ORDERS and record.get("state") not in self.settings.order_states:
            return tombstone(record, f"an order in state {record.get('state')!r} is no sale")
        if "active" in model.booleans and record.get("active") is False:
            return tombstone(record, f"the {model.model} is archived")
        return record

    def _attach_lines(self, orders: list[dict[str, Any]]) -> None:
        """Each order's ``lines``: its ``sale.order.line`` rows in sequence, each with the product's ``sku``."""
        by_order: dict[int, list[dict[str, Any]]] = {order["id"]: [] for order in orders}
        if any(order.get("order_line") for order in orders):
            lines = self._call(
                LINES.model,
                "search_read",
                domain=[["order_id", "in", sorted(by_order)]],
                fields=list(LINES.fields),
                order="order_id asc, sequence asc, id asc",
                context={"active_test": False},
            )
            lines = [clean(line, LINES.booleans) for line in lines if isinstance(line, dict)]
            self._learn_skus(ids_of(lines, "product_id"))
            for line in lines:
                order_id = line["order_id"][0] if isinstance(line.get("order_id"), list) else None
                product = line["product_id"][0] if isinstance(line.get("product_id"), list) else None
                if order_id in by_order:
                    by_order[order_id].append({**line, "sku": self._skus.get(product) if product else None})
        for order in orders:
            order["lines"] = by_order[order["id"]]

    def _learn_skus(self, product_ids: list[int]) -> None:
        unknown = [p for p in product_ids if p not in self._skus]
        if not unknown:
            return
        found = self._call(
            "product.product",
            "search_read",
            domain=[["id", "in", unknown]],
            fields=["default_code"],
            context={"active_test": False},
        )
        for product in found if isinstance(found, list) else []:
            code = product.get("default_code")
            self._skus[product["id"]] = code if isinstance(code, str) and code else None
        for product_id in unknown:
            self._skus.setdefault(product_id, None)

    def _exclusions(self, stream: str) -> list[Any]:
        """Partners: not the companies' own partners (your company as it appears on documents is no customer)."""
        if stream != "partners":
            return []
        if self._company_partners is None:
            companies = self._call(
                "res.company", "search_read", domain=[], fields=["partner_id"], context={"active_test": False}
            )
            self._company_partners = ids_of(companies if isinstance(companies, list) else [], "partner_id")
        return [["id", "not in", self._company_partners]] if self._company_partners else []

    def _call(self, model: str, method: str, **arguments: Any) -> Any:
        try:
            return self.client.call(model, method, **arguments)
        except OdooError as exc:
            if exc.auth:
                raise SourceError(f"{self.name}: Odoo refused the credentials ({exc}); check the settings") from None
            if exc.access:
                raise SourceError(f"{self.name}: the API user may not read {model} ({exc})") from None
            raise SourceError(f"{self.name}: Odoo answered {model}.{method} with {exc}") from None

    def close(self) -> None:
        self.http.close()


def _major(version: str) -> int:
    """19 for "19.0", 17 for "saas~17.2"; 0 when unreadable."""
    head = version.removeprefix("saas~").split(".")[0]
    return int(head) if head.isdigit() else 0
