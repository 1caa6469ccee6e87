"""The ``agillic`` destination: recipients, purchases, segments and triggers to Agillic's REST API.

Each kind's guarantee, for a call whose outcome is unknown (sent, no answer):

- ``contact_upsert`` at least once: ``PUT /recipients/{id}`` and ``POST /recipients/:batch`` upsert by Recipient ID
  and write only the fields they carry, so a repeat writes the same values again.
- ``contact_delete`` at least once: deleting twice deletes once; a 404 is ``skipped``.
- ``order`` at least once: each order line is one One-to-Many row whose ``ID`` is ``<source>:<order>:<line>``;
  ``:batchUpdateRecords`` replaces a row with the same ID, so a resend leaves the same rows.
- ``segment_membership`` at least once: setting a field, or adding to (removing from) a static target group,
  twice has the effect of once.
- ``trigger`` at most once: an event achieved twice counts twice and a flow run twice mails twice; neither call
  takes an idempotency key, and nothing can be looked up to tell whether the lost call landed.

A 429 means Agillic changed nothing: it is always ``retryable``. A failure while fetching the token, or a read
that changes nothing (the recipient lookup after a 404), never makes an outcome unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from hub.connectors import CheckResult, ClientOptions, ConnectorContext, Destination, KindSpec, Outgoing
from hub.delivery.auth import TokenError
from hub.delivery.outcomes import InvalidMessage, Outcome, retry_after_seconds
from hub_plugins.agillic import segments
from hub_plugins.agillic._batches import array, chunks, encode
from hub_plugins.agillic._formats import format_dates
from hub_plugins.agillic.auth import AgillicAuth
from hub_plugins.agillic.limits import CONTACT_PENDING_RETRY, MAX_BATCH, MAX_CONCURRENT, MAX_TARGET_GROUP_CALL
from hub_plugins.agillic.purchases import purchase_rows
from hub_plugins.agillic.settings import AgillicSettings

JSON_TYPE = "application/json; charset=utf-8"
_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


class Stop(Exception):
    """Ends a send early with ``outcome`` for every message of the batch (e.g. a lookup failed)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.status)
        self.outcome = outcome


class AgillicDestination(Destination):
    """Agillic: recipients' Person Data (one PUT, or batches of 1000), purchases as One-to-Many rows, segments as
    Person Data fields or static target groups, and triggers as events or flow runs with context."""

    type = "agillic"
    Settings = AgillicSettings
    description = "Agillic: recipients, purchases (One-to-Many rows), segments and triggers (events, flows)"
    #: Agillic limits calls in flight (20) and calls per day, not calls per second: no rate of our own.
    default_rate_limit: ClassVar[float | None] = None
    #: Agillic answers 429 to the 21st concurrent call; the auth flow never lets more than this many out.
    max_concurrency: ClassVar[int] = MAX_CONCURRENT
    kinds: ClassVar[Mapping[str, KindSpec]] = {
        "contact_upsert": KindSpec(
            MAX_BATCH, "at_least_once", "PUT and :batch upsert by Recipient ID; a repeat writes the same fields"
        ),
        "contact_delete": KindSpec(1, "at_least_once", "DELETE by Recipient ID; a recipient already gone is skipped"),
        "order": KindSpec(
            1, "at_least_once", "one One-to-Many row per order line, keyed by its ID; a resend replaces the same rows"
        ),
        "segment_membership": KindSpec(
            MAX_TARGET_GROUP_CALL, "at_least_once", "a field set or a group membership changed twice is changed once"
        ),
        "trigger": KindSpec(
            1, "at_most_once", "an event achieved or a flow run twice sends twice; neither takes an idempotency key"
        ),
    }
    settings: AgillicSettings

    def __init__(self, settings: AgillicSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.auth = AgillicAuth(
            settings.client_id, settings.client_secret, margin=settings.token_margin, max_concurrent=MAX_CONCURRENT
        )

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.context.timezone)

    # -- configuration ------------------------------------------------------------------------------------------

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url=self.settings.url(), headers={"Accept": JSON_TYPE}, auth=self.auth)

    def check(self) -> CheckResult:
        """A token, then ``GET /discovery/onetomany``: proves host, credentials and the purchases table at once."""
        url, table = self.settings.url(), self.settings.purchases_table
        try:
            if self._http is not None:
                response = self.http.get("/discovery/onetomany")
            else:
                options = self.client_options()
                with httpx.Client(
                    base_url=options.base_url, headers=dict(options.headers), auth=options.auth, timeout=10
                ) as client:
                    response = client.get("/discovery/onetomany")
        except TokenError as exc:
            code = exc.response.status_code if exc.response is not None else None
            if code in (400, 401, 403):
                return CheckResult(
                    False, f"Agillic at {url} refused the client credentials (HTTP {code}); check client_id and "
                    "client_secret (Integration > API Settings of the instance)"
                )  # fmt: skip
            return CheckResult(
                False, f"{url} gave no access token (POST /oauth2/token: HTTP {code}); is base_url an Agillic API?"
            )
        except httpx.TransportError as exc:
            return CheckResult(False, f"cannot reach {url} ({type(exc).__name__}); check base_url and the network")
        code = response.status_code
        if code in (401, 403):
            return CheckResult(False, f"Agillic at {url} refused the access token (HTTP {code}); check the credentials")
        if code == 429:
            return CheckResult(True, f"Agillic at {url} accepts the credentials but is refusing calls right now (429)")
        tables = _json(response) if code == 200 else None
        if not isinstance(tables, list):
            return CheckResult(
                False, f"{url} answers but is not an Agillic API (GET /discovery/onetomany gave HTTP {code})"
            )
        names = {t.get("tableId") or t.get("id") or t.get("name") for t in tables if isinstance(t, dict)}
        if table not in names:
            return CheckResult(
                False, f"Agillic at {url} works with these credentials, but has no One-to-Many table {table} "
                "(settings.purchases_table): orders cannot be sent"
            )  # fmt: skip
        return CheckResult(True, f"Agillic at {url} works with these credentials; One-to-Many table {table} is there")

    # -- prepare --------------------------------------------------------------------------------------------------

    def recipient_id(self, view: Mapping[str, Any]) -> str | None:
        """The Recipient ID of the customer of ``view``, from its ``_hub`` keys (settings.recipient_id_key)."""
        keys = view.get("_hub") or {}
        key = self.settings.recipient_id_key
        if key == "external_id":
            value = (keys.get("external_ids") or {}).get(self.settings.external_id_source)
        else:
            value = keys.get(key)
        return str(value) if value not in (None, "") else None

    def _required_id(self, view: Mapping[str, Any], what: str) -> str:
        rid = self.recipient_id(view)
        if rid is None:
            customer = (view.get("_hub") or {}).get("customer_id")
            raise InvalidMessage(
                f"{what} for customer {customer} has no {self.settings.recipient_id_key}, the key its Agillic "
                f"Recipient ID ({self.settings.recipient_id_field}) comes from (settings.recipient_id_key)"
            )
        return rid

    def _dates(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        s = self.settings
        return format_dates(fields, date_format=s.date_format, timestamp_format=s.timestamp_format, zone=self.zone)

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        if kind == "contact_upsert":
            rid = self._required_id(view, "the contact")
            fields = {name: value for name, value in view.items() if name != "_hub"}
            wrong = sorted(name for name in fields if not _UPPER.match(name))
            if wrong:
                raise InvalidMessage(
                    f"Agillic Person Data fields are UPPER_CASE; the outbound mapping gives {', '.join(wrong)}"
                )
            nested = sorted(name for name, value in fields.items() if isinstance(value, dict | list))
            if nested:
                raise InvalidMessage(f"Agillic Person Data is flat; {', '.join(nested)} hold objects or lists")
            data = self._dates(fields)
            data[self.settings.recipient_id_field] = rid
            return {"recipient_id": rid, "personData": data}
        if kind == "contact_delete":
            keys = view.get("_hub") or {}
            return {
                "recipient_id": self.recipient_id(view),
                "remote_id": keys.get("remote_id"),
                "merged_into": keys.get("merged_into"),
            }
        if kind == "order":
            if not view.get("_hub"):
                raise InvalidMessage("the order has no customer; Agillic purchases belong to a recipient")
            rid = self._required_id(view, "the order")
            s = self.settings
            records = purchase_rows(
                view, date_format=s.date_format, timestamp_format=s.timestamp_format, zone=self.zone
            )
            return {"recipient_id": rid, "table": self.settings.purchases_table, "records": records}
        if kind == "segment_membership":
            rid = self._required_id(view, "the segment change")
            return {"recipient_id": rid, **segments.prepare(self.settings, view)}
        if kind == "trigger":
            return self._prepare_trigger(view)
        raise InvalidMessage(f"Agillic does not take {kind} messages")

    def _prepare_trigger(self, view: Mapping[str, Any]) -> dict[str, Any]:
        """``to: {agillic: {trigger_id: X}}``: ``X`` or ``event:X`` achieves event X, ``flow:X`` runs flow X for the
        recipient; the trigger's data goes as context where a schema is configured (flows always need one)."""
        trigger_id = str(view.get("trigger_id") or "")
        target, sep, name = trigger_id.partition(":")
        if not sep:
            target, name = "event", trigger_id
        if target not in ("event", "flow") or not name:
            raise InvalidMessage(f"trigger_id {trigger_id!r}: give EVENT_ID, event:EVENT_ID or flow:FLOW_ID")
        data = view.get("data") or {}
        if not isinstance(data, dict):
            raise InvalidMessage("a trigger's data must be an object of named values")
        rid = self._required_id(view, "the trigger")
        schemas = self.settings.context_schemas
        schema = schemas[trigger_id] if trigger_id in schemas else schemas.get(name, self.settings.context_schema)
        if target == "flow" and not schema:
            raise InvalidMessage(
                f"flow {name} runs with context: give settings.context_schema or context_schemas[{trigger_id!r}]"
            )
        return {"recipient_id": rid, "target": target, "id": name, "schema": schema, "data": data}

    # -- send -----------------------------------------------------------------------------------------------------

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        try:
            if kind == "contact_upsert":
                return self.write_recipients([(m.payload["recipient_id"], m.payload["personData"]) for m in batch])
            if kind == "segment_membership":
                return segments.send(self, batch)
            handler = {"contact_delete": self._delete, "order": self._purchases, "trigger": self._trigger}.get(kind)
            if handler is None:
                return [Outcome.invalid(f"Agillic does not take {kind} messages") for _ in batch]
            outcomes = []
            for message in batch:
                try:
                    outcomes.append(handler(message))
                except Stop as stop:
                    outcomes.append(stop.outcome)
                except httpx.HTTPError as exc:
                    outcomes.append(self.failure(exc))
            return outcomes
        except Stop as stop:
            return [stop.outcome] * len(batch)
        except httpx.HTTPError as exc:
            return [self.failure(exc)] * len(batch)

    def failure(self, exc: httpx.HTTPError) -> Outcome:
        """A refused or failed token request is ``auth`` (credentials refused) or ``retryable``; a transport error
        is ``retryable`` when it struck the token request (the call never left), else classified as usual."""
        if isinstance(exc, TokenError):
            response = exc.response
            code = response.status_code if response is not None else None
            if code is not None and 400 <= code < 500 and code not in (408, 425, 429):
                return Outcome.auth(code, str(exc))
            delay = retry_after_seconds(response) if response is not None else None
            return Outcome.retryable(code, str(exc), retry_after=delay)
        if isinstance(exc, httpx.TransportError) and self.auth.failed_before_call():
            return Outcome.retryable(None, f"token request failed: {type(exc).__name__}: {exc}".rstrip(": "))
        return Outcome.from_error(exc)

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> httpx.Response:
        """One API call with a JSON body (``body``, or ``raw`` already encoded)."""
        content = raw if raw is not None else (None if body is None else encode(body))
        headers = {"Content-Type": JSON_TYPE} if content is not None else None
        return self.http.request(method, path, content=content, headers=headers)

    def read_recipient(self, rid: str) -> dict[str, Any] | None:
        """The recipient's Person Data, or None if Agillic has no such recipient. A read changes nothing, so any
        failure ends the send as ``retryable``."""
        try:
            response = self.http.get(recipient_path(rid))
        except httpx.HTTPError as exc:
            outcome = self.failure(exc)
            if outcome.status == "unknown":
                outcome = Outcome.retryable(None, outcome.body)
            raise Stop(outcome) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise Stop(Outcome.from_response(response))
        body = _json(response)
        data = body.get("personData") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    def missing_recipient(self, rid: str, response: httpx.Response) -> Outcome:
        """A 404 from a call about ``rid``: retry later if the recipient is not there yet (its contact_upsert may
        still be on its way), else the call named something the instance does not have (table, event, flow)."""
        if self.read_recipient(rid) is None:
            return Outcome.retryable(404, f"Agillic has no recipient {rid} yet", retry_after=CONTACT_PENDING_RETRY)
        return Outcome.rejected(404, response.text[:4000])

    def write_recipients(self, rows: Sequence[tuple[str, dict[str, Any]]]) -> list[Outcome]:
        """Upsert ``(recipient id, personData)`` rows: one PUT for one row, else ``:batch`` calls of at most 1000
        entries and ``max_request_bytes`` each (a recipient repeated starts a new call). One outcome per row."""
        if len(rows) == 1:
            rid, data = rows[0]
            try:
                response = self.call("PUT", recipient_path(rid), {"personData": data})
            except httpx.HTTPError as exc:
                return [self.failure(exc)]
            return [Outcome.from_response(response, ref=rid)]
        entries = [encode({"personData": data}) for _, data in rows]
        limit = self.settings.max_request_bytes
        outcomes: list[Outcome] = [Outcome.unknown("not sent")] * len(rows)
        for chunk in chunks(entries, max_entries=MAX_BATCH, max_bytes=limit, keys=[rid for rid, _ in rows]):
            positions = chunk.positions
            if chunk.oversize:
                size = len(entries[positions[0]])
                outcomes[positions[0]] = Outcome.rejected(None, f"{size} bytes as JSON; an Agillic call takes {limit}")
                continue
            try:
                response = self.call("POST", "/recipients/:batch", raw=array(entries, positions))
            except httpx.HTTPError as exc:
                failed = self.failure(exc)
                for position in positions:
                    outcomes[position] = failed
                continue
            answers = _batch_outcomes(response, [rows[p][0] for p in positions])
            for position, outcome in zip(positions, answers, strict=True):
                outcomes[position] = outcome
        return outcomes

    def _delete(self, message: Outgoing) -> Outcome:
        payload = message.payload
        rid = message.remote_ref or payload.get("remote_id")
        if not rid:
            if payload.get("merged_into") is not None:
                # The survivor may carry the same key: deleting by it could delete the survivor's recipient.
                return Outcome.skipped("merged customer was never delivered under its own Recipient ID")
            rid = payload.get("recipient_id")
            if not rid:
                return Outcome.skipped("no Recipient ID: it was never delivered")
        response = self.call("DELETE", recipient_path(rid))
        if response.status_code == 404:
            return Outcome.skipped("the recipient was already gone from Agillic")
        return Outcome.from_response(response, ref=rid)

    def _purchases(self, message: Outgoing) -> Outcome:
        payload = message.payload
        rid, records = payload["recipient_id"], payload["records"]
        path = f"{recipient_path(rid)}/oneToManyTables/{quote(payload['table'], safe='')}/:batchUpdateRecords"
        entries = [encode(record) for record in records]
        limit = self.settings.max_request_bytes
        for chunk in chunks(entries, max_entries=MAX_BATCH, max_bytes=limit):
            if chunk.oversize:
                return Outcome.rejected(None, f"an order line is over {limit} bytes as JSON")
            response = self.call("POST", path, raw=array(entries, chunk.positions))
            if response.status_code == 404:
                return self.missing_recipient(rid, response)
            if response.status_code >= 300:
                return Outcome.from_response(response)
        return Outcome.sent()

    def _trigger(self, message: Outgoing) -> Outcome:
        payload = message.payload
        rid, name, schema, data = payload["recipient_id"], payload["id"], payload.get("schema"), payload["data"]
        if payload["target"] == "flow":
            path = f"/flows/{quote(name, safe='')}/:executeWithContext"
            body: Any = {"schemaName": schema, "recipients": [{"recipientId": rid, "contextData": data}]}
        elif schema:
            path = f"{recipient_path(rid)}/events/{quote(name, safe='')}/:achieveWithContext"
            body = {"schemaName": schema, "contextData": data}
        else:
            path, body = f"{recipient_path(rid)}/events/{quote(name, safe='')}/:achieveEvent", None
        response = self.call("POST", path, body)
        if response.status_code == 404:
            return self.missing_recipient(rid, response)
        return Outcome.from_response(response)


def recipient_path(rid: str) -> str:
    return f"/recipients/{quote(rid, safe='@')}"


def _batch_outcomes(response: httpx.Response, rids: Sequence[str]) -> list[Outcome]:
    """Outcomes of one ``:batch`` call: entries listed in ``details`` are rejected with their error, the rest
    sent. A batch refused as a whole is ``rejected`` with ``batch=True`` (the core halves it to find the row)."""
    if response.status_code >= 300:
        outcome = Outcome.from_response(response)
        if outcome.status == "rejected":
            outcome = Outcome.rejected(outcome.code, outcome.body, batch=True)
        return [outcome] * len(rids)
    body = _json(response)
    body = body if isinstance(body, dict) else {}
    details = body.get("details") if isinstance(body.get("details"), list) else []
    failed = {d.get("index"): d for d in details if isinstance(d, dict)}
    errors = body.get("errors")
    unexplained = isinstance(errors, int) and errors > len(failed)
    outcomes = []
    for index, rid in enumerate(rids):
        if index in failed:
            detail = failed[index]
            outcomes.append(Outcome.rejected(400, f"{detail.get('error')}: {detail.get('message')}"))
        elif unexplained:
            outcomes.append(Outcome.rejected(response.status_code, response.text[:4000], batch=True))
        else:
            outcomes.append(Outcome.sent(rid, code=response.status_code))
    return outcomes


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
