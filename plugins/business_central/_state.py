"""The Business Central emulator's memory: the tenant, the Entra ID app registrations and their tokens, the
companies and their records, throttling, and the control API on them.

A record is stored as its API fields (without ``id``, ``lastModifiedDateTime`` and lines) plus its change time,
kept to the millisecond as BC's SQL ``datetime`` keeps it. Lines belong to their document: changing a line (the
control API replaces a document's lines when they are given) stamps the document, as BC's document triggers do.

:class:`BcState` implements :class:`hub.sources.emulator.EmulatorControl` on the *first* company: streams are the
entity sets ``customers``, ``contacts``, ``items``, ``salesInvoices`` and ``salesCreditMemos``, keyed by ``id``.
Deleting a record removes it (BC's read path reports no deletions); a malformed record is served without its
``lastModifiedDateTime`` (``null``).
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub_plugins.business_central._entities import ENTITY_SETS, Defaults, line, totals

DEFAULT_TENANT = "7d3c1a52-9b4e-4f0a-8c61-2e5d4b9a0f17"
DEFAULT_TENANT_DOMAIN = "nordhjem.onmicrosoft.com"
DEFAULT_CLIENT = ("5f0e2b6c-1d3a-4e8f-9a7b-6c5d4e3f2a1b", "hub~client~secret")
DEFAULT_COMPANY = "Nordhjem AS"
ENVIRONMENTS = ("production", "sandbox")
SCOPE = "https://api.businesscentral.dynamics.com/.default"
MAX_PAGE_SIZE = 20_000  # BC online's server-driven page size
WINDOW = (6000, 300.0)  # requests per sliding window (seconds), per app


class TokenRefusal(Exception):
    """The token endpoint's OAuth2 error answer."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {uuidlib.uuid4()} "
            f"Correlation ID: {uuidlib.uuid4()} Timestamp: {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [self.code],
            "timestamp": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
            "trace_id": str(uuidlib.uuid4()),
            "correlation_id": str(uuidlib.uuid4()),
        }


@dataclass(slots=True)
class Row:
    data: dict[str, Any]
    modified: datetime
    lines: list[dict[str, Any]] | None = None
    version: int = 1


@dataclass(slots=True)
class Company:
    id: str
    name: str
    created: datetime
    tables: dict[str, dict[str, Row]] = field(default_factory=lambda: {name: {} for name in ENTITY_SETS})

    def public(self) -> dict[str, Any]:
        stamp = format_time(self.created)
        return {
            "id": self.id, "systemVersion": "25.1.25773.0", "timestamp": 1, "name": self.name,
            "displayName": self.name, "businessProfileId": "", "systemCreatedAt": stamp,
            "systemCreatedBy": "00000000-0000-0000-0000-000000000001", "systemModifiedAt": stamp,
            "systemModifiedBy": "00000000-0000-0000-0000-000000000001",
        }  # fmt: skip


def now_utc() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_time(text: str | None) -> datetime:
    """A control API time (ISO 8601; naive is UTC), or now; to the millisecond."""
    if text is None:
        return now_utc()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_time(moment: datetime) -> str:
    """``2025-01-06T09:00:00Z``, or ``...09:00:00.123Z`` when it has milliseconds, as BC writes them."""
    plain = moment.astimezone(UTC).replace(tzinfo=None)
    return plain.isoformat(timespec="milliseconds" if plain.microsecond else "seconds") + "Z"


class BcState:
    """Everything the emulator holds; ``lock`` guards it (requests run on several threads)."""

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        tenant_domain: str = DEFAULT_TENANT_DOMAIN,
        clients: Mapping[str, str] | None = None,
        company: str = DEFAULT_COMPANY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = threading.RLock()
        self.tenant = tenant
        self.tenant_domain = tenant_domain
        self.clients = dict(clients or dict([DEFAULT_CLIENT]))
        self.clock = clock
        self.token_ttl = 3599.0
        self.max_page_size = MAX_PAGE_SIZE
        self.window = WINDOW
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expiry on clock)
        self.requests: dict[str, deque[float]] = {}  # client id -> request times in the window
        self.companies: dict[str, Company] = {}
        self.malformed_keys: set[tuple[str, str]] = set()
        self.throttled = 0
        self.retry_after = 1.0
        self.defaults = Defaults()
        self._items: dict[str, dict[Any, tuple[str, Row]]] = {}  # company id -> item number -> (id, row)
        self.add_company(company)

    # -- companies and records ------------------------------------------------------------------------------------

    def add_company(self, name: str, company_id: str | None = None) -> Company:
        with self.lock:
            company = Company(company_id or str(uuidlib.uuid4()), name, now_utc())
            self.companies[company.id] = company
            return company

    @property
    def first(self) -> Company:
        return next(iter(self.companies.values()))

    def company(self, company_id: str) -> Company | None:
        return self.companies.get(company_id.lower())

    def add(self, entity: str, given: Mapping[str, Any], *, modified: datetime, company: Company | None = None) -> str:
        """Create a record of ``entity`` (fields not given get defaults); its id."""
        with self.lock:
            table = (company or self.first).tables[entity]
            key = str(given.get("id") or uuidlib.uuid4())
            if key in table:
                raise ValueError(f"{entity} {key} exists already")
            fields = {k: copy.deepcopy(v) for k, v in given.items() if k not in ("id", "lastModifiedDateTime")}
            number = str(fields.pop("number", None) or self.defaults.number(entity))
            lines_name = ENTITY_SETS[entity][1]
            given_lines = fields.pop(lines_name, None) if lines_name else None
            unknown = sorted(set(fields) - set(ENTITY_SETS[entity][0].properties))
            if unknown:
                raise ValueError(f"unknown {entity} field(s): {', '.join(unknown)}")
            row = Row(self.defaults.record(entity, number, **fields), modified)
            table[key] = row
            if entity == "items":
                self._items.pop((company or self.first).id, None)
            if lines_name is not None:
                self._set_lines(company or self.first, key, row, given_lines or [{}])
            self._link_customer(company or self.first, row)
            return key

    def change(self, entity: str, key: str, given: Mapping[str, Any], *, modified: datetime) -> None:
        with self.lock:
            row = self.first.tables[entity][key]
            if entity == "items":
                self._items.pop(self.first.id, None)
            lines_name = ENTITY_SETS[entity][1]
            fields = {k: copy.deepcopy(v) for k, v in given.items() if k not in ("id", "lastModifiedDateTime")}
            given_lines = fields.pop(lines_name, None) if lines_name else None
            unknown = sorted(set(fields) - set(ENTITY_SETS[entity][0].properties))
            if unknown:
                raise ValueError(f"unknown {entity} field(s): {', '.join(unknown)}")
            row.data.update(fields)
            if given_lines is not None:
                self._set_lines(self.first, key, row, given_lines)
            self._link_customer(self.first, row)
            row.modified = modified
            row.version += 1

    def _set_lines(self, company: Company, key: str, row: Row, given: Any) -> None:
        if not isinstance(given, list) or not all(isinstance(item, Mapping) for item in given):
            raise ValueError("document lines must be a list of objects")
        row.lines = []
        for n, item in enumerate(given, start=1):
            values = dict(item)
            known = self._item(company, values.get("lineObjectNumber"))
            if known is not None and "itemId" not in values:
                values.setdefault("itemId", known[0])
                values.setdefault("description", known[1].data.get("displayName"))
            row.lines.append({"id": str(uuidlib.uuid4()), **line(key, n, values)})
        totals(row.data, row.lines)

    def _item(self, company: Company, number: Any) -> tuple[str, Row] | None:
        """The item with this number (an index kept per company, dropped whenever an item changes)."""
        index = self._items.get(company.id)
        if index is None:
            index = {r.data.get("number"): (key, r) for key, r in company.tables["items"].items()}
            self._items[company.id] = index
        return index.get(number)

    def _link_customer(self, company: Company, row: Row) -> None:
        """A document naming its customer by number gets the customer's id, name and e-mail, as BC fills them."""
        number = row.data.get("customerNumber")
        if "customerId" not in row.data or not number:
            return
        for customer_id, customer in company.tables["customers"].items():
            if customer.data.get("number") == number:
                row.data.update(
                    customerId=customer_id,
                    customerName=customer.data.get("displayName", ""),
                    billToCustomerId=customer_id,
                    billToCustomerNumber=number,
                    billToName=customer.data.get("displayName", ""),
                )
                if not row.data.get("email"):
                    row.data["email"] = customer.data.get("email", "")
                return

    def public(self, entity: str, key: str, row: Row, *, expand: Sequence[str] = ()) -> dict[str, Any]:
        """The record as the API serves it (a malformed one without its change time)."""
        served: dict[str, Any] = {"@odata.etag": f'W/"JzE5Ozk{row.version:016d}MTswMDsn"', "id": key}
        served.update(row.data)
        bad = (entity, key) in self.malformed_keys
        served["lastModifiedDateTime"] = None if bad else format_time(row.modified)
        lines_name = ENTITY_SETS[entity][1]
        if lines_name is not None and lines_name in expand:
            served[lines_name] = [dict(x) for x in row.lines or []]
        return served

    # -- tokens, throttle and the request window ------------------------------------------------------------------

    def grant(self, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        """The client-credentials grant, or a :class:`TokenRefusal` as Entra ID words it."""
        if tenant not in (self.tenant, self.tenant_domain):
            raise TokenRefusal(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
                "into the correct cloud.",
            )
        if form.get("grant_type") != "client_credentials":
            raise TokenRefusal(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client = form.get("client_id", "")
        if client not in self.clients:
            raise TokenRefusal(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client}' was not found in the directory '{self.tenant_domain}'.",
            )
        if not secrets.compare_digest(form.get("client_secret", ""), self.clients[client]):
            raise TokenRefusal(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                "value, not the client secret ID.",
            )
        if form.get("scope") != SCOPE:
            raise TokenRefusal(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is not valid. Client credential flows must have "
                "a scope value with /.default suffixed to the resource identifier.",
            )
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = (client, self.clock() + self.token_ttl)
        seconds = int(self.token_ttl)
        return {"token_type": "Bearer", "expires_in": seconds, "ext_expires_in": seconds, "access_token": token}

    def client_of(self, token: str | None) -> str | None:
        """The app a token was granted to, or None when it is missing, unknown or expired."""
        with self.lock:
            entry = self.tokens.get(token or "")
            if entry is None or entry[1] <= self.clock():
                return None
            return entry[0]

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def take_throttle(self, client: str | None) -> float | None:
        """Seconds to ask a request to wait (a control API throttle, or the app's window is full), else None.
        ``client`` None: the token endpoint, which only the control API's throttle reaches."""
        with self.lock:
            if self.throttled:
                self.throttled -= 1
                return self.retry_after
            if client is None:
                return None
            limit, seconds = self.window
            now = self.clock()
            seen = self.requests.setdefault(client, deque())
            while seen and seen[0] <= now - seconds:
                seen.popleft()
            if len(seen) >= limit:
                return max(1.0, seen[0] + seconds - now)
            seen.append(now)
            return None

    # -- the control API (hub.sources.emulator.EmulatorControl) ---------------------------------------------------

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        if stream not in ENTITY_SETS:
            raise KeyError(stream)
        modified = parse_time(updated_at)
        keys: list[str] = []
        with self.lock:
            for item in records:
                if "_key" in item:
                    key = str(item["_key"])
                    if key not in self.first.tables[stream]:
                        raise KeyError(key)
                    self.change(stream, key, {k: v for k, v in item.items() if k != "_key"}, modified=modified)
                else:
                    key = self.add(stream, item, modified=modified)
                keys.append(key)
        return keys

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        with self.lock:
            del self.first.tables[stream][key]
            self.malformed_keys.discard((stream, key))
            self._items.clear()

    def malformed(self, stream: str, key: str) -> None:
        with self.lock:
            self.first.tables[stream][key]  # KeyError (404) for an unknown record
            self.malformed_keys.add((stream, key))

    def throttle(self, count: int, retry_after: float) -> None:
        with self.lock:
            self.throttled, self.retry_after = count, retry_after

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tenant": self.tenant,
                "environments": list(ENVIRONMENTS),
                "companies": [
                    {"id": c.id, "name": c.name, "records": {n: len(t) for n, t in c.tables.items()}}
                    for c in self.companies.values()
                ],
                "tokens": len(self.tokens),
                "malformed": sorted(f"{s}/{k}" for s, k in self.malformed_keys),
            }

    def reset(self) -> None:
        with self.lock:
            for company in self.companies.values():
                company.tables = {name: {} for name in ENTITY_SETS}
            self._items.clear()
            self.malformed_keys.clear()
            self.throttled = 0
