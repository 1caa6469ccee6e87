"""The Agillic emulator's in-memory instance: credentials and tokens, recipients, One-to-Many tables, events,
flows, static target groups, and the limits the real API enforces.

Everything is plain Python so tests can seed and inspect it in-process (``app.state.agillic``); the HTTP layer in
:mod:`hub_plugins.agillic.emulator` only turns requests into these calls and :class:`ApiError` into status codes
and ``{"error": ..., "message": ...}`` bodies.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from hub_plugins.agillic._formats import matches
from hub_plugins.agillic._instance import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EVENTS,
    DEFAULT_FLOWS,
    DEFAULT_PERSON_DATA,
    DEFAULT_TABLES,
    DEFAULT_TARGET_GROUPS,
    FieldType,
)

_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


class ApiError(Exception):
    """An Agillic error response: status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class AgillicState:
    """One emulated instance. Mutation goes through methods that hold ``lock``: the server thread writes while a
    test thread reads."""

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        token_lifetime: float = 7200.0,
        recipient_id_field: str = "EMAIL",
        person_data: Mapping[str, FieldType] | None = None,
        strict_fields: bool = False,
        date_format: str = "dd.MM.yyyy",
        timestamp_format: str = "dd.MM.yyyy HH:mm:ss",
        tables: Mapping[str, Mapping[str, FieldType]] | None = None,
        events: Iterable[str] = DEFAULT_EVENTS,
        flows: Iterable[str] = DEFAULT_FLOWS,
        target_groups: Iterable[str] = DEFAULT_TARGET_GROUPS,
        max_concurrent: int = 20,
        max_batch: int = 1000,
        max_payload_bytes: int = 20 * 1024 * 1024,
        latency: float = 0.0,
    ) -> None:
        self.lock = threading.RLock()
        self.credentials = dict(credentials or {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
        self.token_lifetime = token_lifetime
        self.recipient_id_field = recipient_id_field
        self.person_data: dict[str, FieldType] = dict(person_data or DEFAULT_PERSON_DATA)
        self.person_data.setdefault(recipient_id_field, "STRING")
        self.strict_fields = strict_fields
        self.date_format = date_format
        self.timestamp_format = timestamp_format
        self.table_fields = {name: dict(fields) for name, fields in (tables or DEFAULT_TABLES).items()}
        self.events = set(events)
        self.flows = set(flows)
        self.max_concurrent = max_concurrent
        self.max_batch = max_batch
        self.max_payload_bytes = max_payload_bytes
        self.latency = latency
        self._groups = set(target_groups)
        self.reset()

    def reset(self) -> None:
        """Forget recipients, records, achievements, executions, tokens and counters; keep the configuration."""
        with self.lock:
            self.tokens: dict[str, float] = {}
            self.recipients: dict[str, dict[str, Any]] = {}
            self.records: dict[str, dict[str, dict[str, dict[str, Any]]]] = {t: {} for t in self.table_fields}
            self.event_counts: Counter[tuple[str, str]] = Counter()
            self.achievements: list[dict[str, Any]] = []
            self.executions: list[dict[str, Any]] = []
            self.target_groups: dict[str, set[str]] = {name: set() for name in self._groups}
            self.largest_batch: dict[str, int] = {}
            self.requests = 0
            self.tokens_issued = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.refused_concurrency = 0
            self.refused_tokens = 0

    # -- auth -----------------------------------------------------------------------------------------------------

    def issue_token(self, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        with self.lock:
            if client_id is None or self.credentials.get(client_id) != client_secret:
                raise ApiError(401, "invalid_client", "Unknown client or wrong secret")
            token = secrets.token_urlsafe(24)
            self.tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
            return {"access_token": token, "token_type": "bearer", "expires_in": int(self.token_lifetime)}

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
            valid = expires is not None and time.monotonic() < expires
            if not valid:
                self.refused_tokens += 1
            return valid

    def basic_valid(self, client_id: str, client_secret: str) -> bool:
        return self.credentials.get(client_id) == client_secret

    def expire_tokens(self) -> int:
        """Make every issued token invalid (as if two hours had passed); returns how many there were."""
        with self.lock:
            count = len(self.tokens)
            self.tokens.clear()
            return count

    # -- limits ---------------------------------------------------------------------------------------------------

    def enter(self) -> bool:
        """Count a call in flight; False (and not counted) when it would be one more than ``max_concurrent``."""
        with self.lock:
            self.requests += 1
            if self.in_flight >= self.max_concurrent:
                self.refused_concurrency += 1
                return False
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def check_batch(self, endpoint: str, size: int, limit: int | None = None) -> None:
        """Record the batch size seen on ``endpoint``; 400 above the limit (nothing of it is applied)."""
        limit = self.max_batch if limit is None else limit
        with self.lock:
            self.largest_batch[endpoint] = max(self.largest_batch.get(endpoint, 0), size)
        if size > limit:
            raise ApiError(400, "BatchTooLarge", f"At most {limit} entries per call; this one has {size}")

    # -- recipients -----------------------------------------------------------------------------------------------

    def resolve(self, reference: str) -> str | None:
        """The Recipient ID a path segment names: the id itself, or ``FIELD=value`` for any unique field."""
        with self.lock:
            field, sep, value = reference.partition("=")
            if not sep or not _UPPER.match(field):
                return reference if reference in self.recipients else None
            if field == self.recipient_id_field:
                return value if value in self.recipients else None
            found = [rid for rid, data in self.recipients.items() if str(data.get(field, "")) == value]
            return found[0] if len(found) == 1 else None

    def recipient(self, reference: str) -> tuple[str, dict[str, Any]]:
        rid = self.resolve(reference)
        if rid is None:
            raise ApiError(404, "RecipientNotFound", f"No recipient {reference}")
        return rid, self.recipients[rid]

    def _clean_person_data(self, data: Any, what: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(400, "InvalidRequestBody", f"{what}: personData must be an object")
        for name, value in data.items():
            if not _UPPER.match(name):
                raise ApiError(400, "InvalidField", f"{what}: Person Data fields are UPPER_CASE, not {name!r}")
            kind = self.person_data.get(name)
            if kind is None and self.strict_fields:
                raise ApiError(400, "UnknownField", f"{what}: no Person Data field {name}")
            self._check_value(kind or "STRING", value, f"{what}: {name}", unknown=kind is None)
        return data

    def _check_value(self, kind: FieldType, value: Any, where: str, *, unknown: bool = False) -> None:
        if value is None or value == "":
            return
        if unknown:
            ok = isinstance(value, str | int | float | bool)
        elif kind == "BOOLEAN":
            ok = isinstance(value, bool) or str(value).lower() in ("true", "false")
        elif kind == "NUMBER":
            ok = not isinstance(value, bool) and _number(value)
        elif kind == "DATE":
            ok = isinstance(value, str) and matches(value, self.date_format)
        elif kind == "TIMESTAMP":
            ok = isinstance(value, str) and matches(value, self.timestamp_format)
        else:
            ok = isinstance(value, str | int | float | bool)
        if not ok:
            expected = {"DATE": self.date_format, "TIMESTAMP": self.timestamp_format}.get(kind, kind.lower())
            raise ApiError(400, "InvalidFieldValue", f"{where}: {value!r} is not a valid {kind} ({expected})")

    def upsert(self, reference: str, body: Any) -> bool:
        """``PUT /recipients/{id}``: create (True) or update (False) the fields the call includes; an included
        field sent empty (``""`` or null) is cleared. The Recipient ID itself cannot change."""
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequestBody", "The body must be an object with personData")
        data = self._clean_person_data(body.get("personData", {}), reference)
        with self.lock:
            rid = self.resolve(reference)
            key = self.recipient_id_field
            if rid is None:
                field, sep, value = reference.partition("=")
                if sep and field != key:
                    raise ApiError(404, "RecipientNotFound", f"No recipient {reference} to update")
                rid = value if sep else reference
            if key in data and str(data[key]) != rid:
                raise ApiError(400, "RecipientIdImmutable", f"{key} is the Recipient ID and cannot change with PUT")
            created = rid not in self.recipients
            stored = self.recipients.setdefault(rid, {key: rid})
            for name, value in data.items():
                if value is None or value == "":
                    stored.pop(name, None)
                else:
                    stored[name] = value
            stored[key] = rid
            return created

    def batch_upsert(self, entries: Any) -> dict[str, Any]:
        """``POST /recipients/:batch``: each entry upserted on its own; failures are listed, the rest applied."""
        if not isinstance(entries, list):
            raise ApiError(400, "InvalidRequestBody", "The body must be an array of recipients")
        self.check_batch("recipients:batch", len(entries))
        created = updated = 0
        errors: list[dict[str, Any]] = []
        for index, entry in enumerate(entries):
            data = entry.get("personData") if isinstance(entry, dict) else None
            rid = data.get(self.recipient_id_field) if isinstance(data, dict) else None
            try:
                if rid in (None, ""):
                    raise ApiError(400, "MissingRecipientId", f"entry {index} has no {self.recipient_id_field}")
                if self.upsert(str(rid), entry):
                    created += 1
                else:
                    updated += 1
            except ApiError as exc:
                errors.append({"index": index, "recipientId": rid, "error": exc.code, "message": exc.message})
        return {"created": created, "updated": updated, "warnings": 0, "errors": len(errors), "details": errors}

    def create(self, body: Any) -> str:
        """``POST /recipients``: 409 when the Recipient ID exists."""
        data = body.get("personData") if isinstance(body, dict) else None
        rid = data.get(self.recipient_id_field) if isinstance(data, dict) else None
        if rid in (None, ""):
            raise ApiError(400, "MissingRecipientId", f"personData needs {self.recipient_id_field}")
        with self.lock:
            if str(rid) in self.recipients:
                raise ApiError(409, "RecipientExists", f"Recipient {rid} exists; use PUT to update it")
            self.upsert(str(rid), body)
            return str(rid)

    def delete(self, reference: str) -> None:
        with self.lock:
            rid, _ = self.recipient(reference)
            del self.recipients[rid]
            for table in self.records.values():
                table.pop(rid, None)
            for members in self.target_groups.values():
                members.discard(rid)

    # -- One-to-Many tables ---------------------------------------------------------------------------------------

    def _table(self, table: str) -> dict[str, FieldType]:
        fields = self.table_fields.get(table)
        if fields is None:
            raise ApiError(404, "TableNotFound", f"No One-to-Many table {table}")
        return fields

    def update_records(self, reference: str, table: str, records: Any) -> int:
        """``:batchUpdateRecords``: create or replace each record by its ``ID``; all or nothing."""
        fields = self._table(table)
        if not isinstance(records, list):
            raise ApiError(400, "InvalidRequestBody", "The body must be an array of records")
        self.check_batch("oneToManyTables:batchUpdateRecords", len(records))
        for index, record in enumerate(records):
            if not isinstance(record, dict) or record.get("ID") in (None, ""):
                raise ApiError(400, "MissingPrimaryKey", f"record {index}: the ID or primary key must be specified")
            for name, value in record.items():
                if name not in fields:
                    raise ApiError(400, "UnknownField", f"record {index}: {table} has no field {name}")
                self._check_value(fields[name], value, f"record {index}: {name}")
        with self.lock:
            rid, _ = self.recipient(reference)
            rows = self.records[table].setdefault(rid, {})
            for record in records:
                rows[str(record["ID"])] = {k: v for k, v in record.items() if v is not None}
            return len(records)

    def records_of(self, reference: str, table: str) -> list[dict[str, Any]]:
        self._table(table)
        with self.lock:
            rid, _ = self.recipient(reference)
            return list(self.records[table].get(rid, {}).values())

    # -- events, flows, target groups -------------------------------------------------------------------------------

    def achieve(self, reference: str, event: str, context: dict[str, Any] | None = None) -> int:
        """Add one to the recipient's event counter (starting its flows); 404 for an unknown event or recipient."""
        with self.lock:
            if event not in self.events:
                raise ApiError(404, "EventNotFound", f"No event {event}")
            rid, _ = self.recipient(reference)
            self.event_counts[(rid, event)] += 1
            self.achievements.append({"recipientId": rid, "eventId": event, "context": context, "at": _now()})
            return self.event_counts[(rid, event)]

    def execute(self, flow: str, schema: str | None, recipients: list[dict[str, Any]] | None) -> int:
        """Run a flow (for its target group, or for the listed recipients with their context); 404 if unknown."""
        with self.lock:
            if flow not in self.flows:
                raise ApiError(404, "FlowNotFound", f"No flow {flow}")
            if recipients is None:
                self.executions.append({"flowId": flow, "recipientId": None, "schemaName": None, "at": _now()})
                return 0
            resolved = [(self.recipient(str(entry.get("recipientId")))[0], entry) for entry in recipients]
            for rid, entry in resolved:
                self.executions.append(
                    {
                        "flowId": flow,
                        "recipientId": rid,
                        "schemaName": schema,
                        "contextData": entry.get("contextData"),
                        "at": _now(),
                    }
                )
            return len(resolved)

    def change_group(self, group: Any, recipient_ids: Any, *, add: bool) -> dict[str, Any]:
        """Add to or remove from a static target group; unknown recipients are listed, the rest changed."""
        if not isinstance(group, str) or not isinstance(recipient_ids, list):
            raise ApiError(400, "InvalidRequestBody", "Give targetGroupName and a recipientIds array")
        endpoint = "recipients:addToStaticTargetGroup" if add else "recipients:removeFromStaticTargetGroup"
        self.check_batch(endpoint, len(recipient_ids), 100)
        with self.lock:
            members = self.target_groups.get(group)
            if members is None:
                raise ApiError(404, "TargetGroupNotFound", f"No static target group {group}")
            changed, missing = 0, []
            for reference in recipient_ids:
                rid = self.resolve(str(reference))
                if rid is None:
                    missing.append(reference)
                elif add and rid not in members:
                    members.add(rid)
                    changed += 1
                elif not add and rid in members:
                    members.discard(rid)
                    changed += 1
            return {"changed": changed, "notFound": missing}

    def define(self, *, events: Iterable[str] = (), flows: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        """Create events, flows and static target groups (an admin does it in Agillic's UI)."""
        with self.lock:
            self.events.update(events)
            self.flows.update(flows)
            for group in groups:
                self._groups.add(group)
                self.target_groups.setdefault(group, set())

    # -- inspection -------------------------------------------------------------------------------------------------

    def discovery(self) -> list[dict[str, Any]]:
        return [
            {"tableId": name, "fields": [{"name": f, "type": t, "primaryKey": f == "ID"} for f, t in fields.items()]}
            for name, fields in self.table_fields.items()
        ]

    def snapshot(self) -> dict[str, Any]:
        """Everything the emulator holds and received, JSON-ready, for ``GET /_emulator/state``."""
        with self.lock:
            return {
                "recipients": [dict(data) for data in self.recipients.values()],
                "records": [
                    {"table": table, "recipientId": rid, **record}
                    for table, by_recipient in self.records.items()
                    for rid, rows in by_recipient.items()
                    for record in rows.values()
                ],
                "achievements": list(self.achievements),
                "executions": list(self.executions),
                "target_groups": {name: sorted(members) for name, members in self.target_groups.items()},
                "largest_batch": dict(self.largest_batch),
                "requests": self.requests,
                "tokens_issued": self.tokens_issued,
                "refused_tokens": self.refused_tokens,
                "max_in_flight": self.max_in_flight,
                "refused_concurrency": self.refused_concurrency,
                "max_concurrent": self.max_concurrent,
            }


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
