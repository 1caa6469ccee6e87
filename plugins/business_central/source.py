"""The ``business_central`` source: customers, contacts, items, sales invoices and credit memos from Microsoft
Dynamics 365 Business Central's API v2.0, read incrementally.

Every stream reads ``GET {api}/companies({company})/{entity}`` with::

    $filter=lastModifiedDateTime ge <cursor>      (absent on the first read)
    $orderby=lastModifiedDateTime,id
    $expand=salesInvoiceLines                     (documents: their lines come with them)
    Prefer: odata.maxpagesize=<page_size>

and follows ``@odata.nextLink`` page by page. ``ge``, not ``gt``: records that share the cursor's last time are all
read again, and those already read (their ids are in the cursor, as :class:`hub.cursors.IncrementalCursor` keeps
them) are skipped, so none is lost and none is counted twice. Within a read the filter does not move: each batch's
cursor keeps the read's starting point and the next page's link, so a sync killed after a batch resumes at the
next page; only the last page moves the starting point up to the latest change seen. Pages come in change order,
so a record changed during the read moves behind the page being read and is read again in the same read.

The company (the ``company`` setting: an id or a name) is looked up once per source, on first use. Draft invoices
and credit memos are not sales yet: unless ``include_drafts``, they are read as tombstones (a posted invoice keeps
its id, so the draft's tombstone never deletes it). BC's API reports no deletions on its read path (only
webhook subscriptions do), so no stream yields tombstones for deleted records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from hub import Batch, CheckResult, ConnectorContext, Source, SourceError, Stream
from hub.cursors import IncrementalCursor
from hub.sources.http import SourceHttp, describe
from hub_plugins.business_central.auth import ClientCredentials
from hub_plugins.business_central.records import (
    BLANK_TIME,
    ENTITIES,
    Entity,
    error_record,
    is_draft,
    problem,
    tombstone,
)
from hub_plugins.business_central.settings import BusinessCentralSettings


class BusinessCentralSource(Source):
    """Customers (B2B included), contacts, items, invoices and credit memos from Business Central API v2.0."""

    type = "business_central"
    Settings = BusinessCentralSettings
    description = "Microsoft Dynamics 365 Business Central API v2.0: customers, contacts, items, invoices, credit memos"
    settings: BusinessCentralSettings

    def __init__(self, settings: BusinessCentralSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.api = settings.api_root()
        self.auth = ClientCredentials(
            token_url=settings.token_endpoint(),
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            scope=settings.scope,
        )
        self.http = SourceHttp(
            self.api + "/",
            name=context.name,
            headers={"Accept": "application/json", "Prefer": f"odata.maxpagesize={settings.page_size}"},
            auth=self.auth,
            timeout=settings.timeout,
            rate_limit=settings.rate_limit,
        )
        self._company: tuple[str, str] | None = None  # (id, name), looked up once

    def streams(self) -> dict[str, Stream]:
        return {name: ENTITIES[name].stream() for name in self.settings.streams}

    # -- check --------------------------------------------------------------------------------------------------------

    def check(self) -> CheckResult:
        where = f"Business Central environment {self.settings.environment!r} of tenant {self.settings.tenant}"
        try:
            company_id, name = self.company()
            for stream in self.settings.streams:
                self._json(self._get(f"companies({company_id})/{stream}", {"$top": 1, "$select": "id"}))
        except SourceError as exc:
            if self.auth.refusal is not None:
                return CheckResult(
                    False,
                    f"Microsoft Entra ID refused the app for tenant {self.settings.tenant} ({self.auth.refusal}); "
                    "check tenant, client_id and client_secret",
                )
            return CheckResult(False, str(exc).removeprefix(f"{self.name}: "))
        streams = ", ".join(self.settings.streams)
        return CheckResult(True, f"the {where} lets the app read company {name!r} ({company_id}): {streams}")

    def company(self) -> tuple[str, str]:
        """The configured company's (id, name), looked up once: by id, else by name or display name."""
        if self._company is None:
            wanted = self.settings.company.strip()
            body = self._json(self._get("companies", None))
            companies = [c for c in body.get("value") or [] if isinstance(c, dict) and isinstance(c.get("id"), str)]
            for company in companies:
                names = {company["id"].lower(), str(company.get("name", "")), str(company.get("displayName", ""))}
                if wanted.lower() in names or wanted in names:
                    self._company = (company["id"], str(company.get("name") or company["id"]))
                    break
            else:
                have = "; ".join(f"{c.get('name')} ({c['id']})" for c in companies) or "none"
                raise SourceError(
                    f"{self.name}: the environment has no company {wanted!r} (it has: {have}); "
                    "set `company` to one of these names or ids"
                )
        return self._company

    # -- reading ------------------------------------------------------------------------------------------------------

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        entity = ENTITIES.get(stream)
        if entity is None or stream not in self.settings.streams:
            raise SourceError(
                f"{self.name}: no stream {stream!r}; this connector reads {', '.join(self.settings.streams)}"
            )
        state: Mapping[str, Any] = cursor or {}
        position = IncrementalCursor.from_state(state.get("position"), lag=self.settings.lag, timezone=UTC)
        url, params = state.get("next"), None
        if not url:
            url, params = self._first_page(entity, position)
        while True:
            body = self._json(self._get(url, params))
            records = self._records(entity, body.get("value"), position)
            next_link = body.get("@odata.nextLink")
            if not next_link:
                yield Batch(records, {"position": position.completed_state()})
                return
            url, params = self._own_link(next_link), None
            yield Batch(records, {"position": position.state(), "next": url})

    def _first_page(self, entity: Entity, position: IncrementalCursor) -> tuple[str, dict[str, Any]]:
        company_id, _ = self.company()
        params: dict[str, Any] = {"$orderby": "lastModifiedDateTime,id"}
        start = position.start_value
        if isinstance(start, datetime) and start - datetime.min.replace(tzinfo=UTC) > position.lag:
            params["$filter"] = f"lastModifiedDateTime ge {odata_time(start - position.lag)}"
        if entity.lines is not None:
            params["$expand"] = entity.lines
        return f"companies({company_id})/{entity.name}", params

    def _records(self, entity: Entity, value: Any, position: IncrementalCursor) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise SourceError(f"{self.name}: {entity.name}: the answer holds no `value` list")
        records: list[dict[str, Any]] = []
        for item in value:
            reason = problem(entity, item)
            if reason is None:
                try:
                    stamp = position.parse(item["lastModifiedDateTime"])
                except ValueError:
                    stamp_text = item["lastModifiedDateTime"]
                    reason = f"{entity.name} {item['id']}: lastModifiedDateTime {stamp_text!r} is not a time"
            if reason is not None:
                records.append(error_record(reason, item))
                continue
            key = item["id"]
            if item["lastModifiedDateTime"] != BLANK_TIME and stamp is not None:
                if not position.accepts(stamp, key):
                    continue  # read before, exactly at the cursor's time
                position.observe(stamp, key)
            if not self.settings.include_drafts and is_draft(entity, item):
                records.append(tombstone(item, f"a {item.get('status')} document is not a sale"))
            else:
                records.append(item)
        return records

    def _own_link(self, link: Any) -> str:
        """A next link, only if it points back at this API (the bearer token goes with it)."""
        if isinstance(link, str) and link.startswith(self.api + "/"):
            return link
        raise SourceError(f"{self.name}: the API answered a next link outside {self.api}; refusing to follow it")

    # -- HTTP ---------------------------------------------------------------------------------------------------------

    def _get(self, url: str, params: Mapping[str, Any] | None) -> httpx.Response:
        response = self.http.get(url, params=dict(params) if params else None)
        if response.status_code in (401, 403):
            code, message = odata_error(response)
            hint = (
                "register the app in Business Central (Microsoft Entra Applications) and grant it read permissions"
                if response.status_code == 401
                else "grant the app's user permission to read this"
            )
            raise SourceError(f"{self.name}: Business Central refused the app ({code}: {message}); {hint}")
        return response

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            code, message = odata_error(response)
            where = f"{response.request.method} {response.request.url.path}"
            raise SourceError(
                f"{self.name}: Business Central answered {response.status_code} ({code}: {message}) to {where}"
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"{self.name}: {describe(response)} is not JSON") from None
        if not isinstance(body, dict):
            raise SourceError(f"{self.name}: {describe(response)} is not a JSON object")
        return body

    def close(self) -> None:
        self.http.close()


def odata_time(moment: datetime) -> str:
    """An OData ``Edm.DateTimeOffset`` literal in UTC: ``2025-01-06T09:00:00Z`` or ``...09:00:00.123Z``."""
    plain = moment.astimezone(UTC).replace(tzinfo=None)
    if plain.microsecond:
        return plain.isoformat(timespec="microseconds").rstrip("0") + "Z"
    return plain.isoformat(timespec="seconds") + "Z"


def odata_error(response: httpx.Response) -> tuple[str, str]:
    """``(code, message)`` of an OData error body ``{"error": {"code", "message"}}``, else the HTTP status."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        message = str(error.get("message") or "").split("  CorrelationId")[0].strip()
        return error["code"], message or response.reason_phrase
    return f"HTTP {response.status_code}", response.reason_phrase
