"""The Actito emulator's in-memory licence: profiles, custom-table records, scenario events, transactional mails,
bulk imports, tokens and the licence's limits.

Plain Python, so tests can seed and read it in-process (``app.state.actito``); :mod:`hub_plugins.actito.emulator`
only turns HTTP into these calls and :class:`~hub_plugins.actito._model.ApiError` into status codes and bodies.
Every method that reads or changes data holds ``lock``: the server thread writes while a test thread reads.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub_plugins.actito import _imports
from hub_plugins.actito._model import (
    DEFAULT_PROFILE_ATTRIBUTES,
    DEFAULT_SEGMENTATIONS,
    DEFAULT_SUBSCRIPTIONS,
    TECHNICAL,
    ApiError,
    Attribute,
    CustomTable,
    Import,
    default_tables,
    named,
)

DEFAULT_API_KEY = "emulator-key"
DEFAULT_ENTITY = "hub"
DEFAULT_PROFILE_TABLE = "customers"
MAX_ZIP_BYTES = 100 * 1024 * 1024


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class ActitoState:
    """One emulated licence with one entity and one profile table. Options are plain attributes, so a test may
    change them at any time (``state.imports_per_day = 2``)."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        entity: str = DEFAULT_ENTITY,
        profile_table: str = DEFAULT_PROFILE_TABLE,
        profile_attributes: Iterable[Attribute] = DEFAULT_PROFILE_ATTRIBUTES,
        subscriptions: Iterable[str] = DEFAULT_SUBSCRIPTIONS,
        segmentations: Mapping[str, bool] = DEFAULT_SEGMENTATIONS,
        tables: Mapping[str, CustomTable] | None = None,
        campaigns: Mapping[str, bool] | None = None,
        token_ttl: float = 900.0,
        max_concurrent: int = 5,
        calls_per_minute: int | None = 100,
        rate_window: float = 60.0,
        imports_per_day: int = 12,
        import_seconds: float = 0.0,
        latency: float = 0.0,
        timezone: str = "Europe/Brussels",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.api_keys = set(api_keys)
        self.entity = entity
        self.profile_table = profile_table
        self.attributes = named(profile_attributes)
        self.subscriptions = tuple(subscriptions)
        self.segmentations = dict(segmentations)
        self.tables = dict(tables if tables is not None else default_tables())
        #: campaign -> active; None accepts every campaign name as an active one.
        self.campaigns = dict(campaigns) if campaigns is not None else None
        self.token_ttl = token_ttl
        self.max_concurrent = max_concurrent
        self.calls_per_minute = calls_per_minute
        self.rate_window = rate_window
        self.imports_per_day = imports_per_day
        self.max_zip_bytes = MAX_ZIP_BYTES
        self.import_seconds = import_seconds
        self.latency = latency
        self.zone = ZoneInfo(timezone)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.reset()

    def reset(self) -> None:
        """Forget all data, tokens, imports and counters; keep keys, structure and limits."""
        with self.lock:
            self.profiles: dict[int, dict[str, Any]] = {}
            self._index: dict[str, dict[Any, int]] = {}
            self._ids = itertools.count(1)
            self._import_ids = itertools.count(1)
            self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.tables}
            self.events: list[dict[str, Any]] = []
            self.mails: list[dict[str, Any]] = []
            self.imports: dict[int, Import] = {}
            self.import_counts: Counter[tuple[str, str]] = Counter()
            self.refused_imports = 0
            self.tokens: dict[str, float] = {}
            self.tokens_issued = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.concurrency_refusals = 0
            self._calls: deque[float] = deque()
            self.throttled = 0
            self.requests = 0

    # -- limits and tokens ----------------------------------------------------------------------------------------

    def enter(self) -> bool:
        """Count a request in flight; False when it is one more than the licence allows at once (429)."""
        with self.lock:
            self.in_flight += 1
            self.requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.in_flight > self.max_concurrent:
                self.concurrency_refusals += 1
                return False
            return True

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def throttle_delay(self) -> float:
        """Seconds this call must wait so that at most ``calls_per_minute`` calls start in any ``rate_window``:
        Actito slows excess calls down instead of refusing them."""
        with self.lock:
            if not self.calls_per_minute:
                return 0.0
            now = time.monotonic()
            calls = self._calls
            if len(calls) < self.calls_per_minute:
                calls.append(now)
                return 0.0
            start = max(now, calls.popleft() + self.rate_window)
            calls.append(start)
            if start > now:
                self.throttled += 1
            return start - now

    def issue_token(self, api_key: str | None) -> dict[str, Any]:
        with self.lock:
            if api_key not in self.api_keys:
                raise ApiError(401, "UNAUTHORIZED", "Invalid or revoked API key")
            token = secrets.token_urlsafe(24)
            self.tokens[token] = time.monotonic() + self.token_ttl
            self.tokens_issued += 1
            ttl = f"{self.token_ttl:g}s"
            return {"accessToken": token, "tokenType": "bearer", "expiresIn": ttl, "scope": "read write"}

    def token_valid(self, token: str | None) -> bool:
        with self.lock:
            expires = self.tokens.get(token or "")
            return expires is not None and time.monotonic() < expires

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as after 15 minutes)."""
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def today(self) -> str:
        return self.clock().astimezone(self.zone).date().isoformat()

    # -- profiles -------------------------------------------------------------------------------------------------

    def check_entity(self, entity: str) -> None:
        if entity != self.entity:
            raise ApiError(404, "ENTITY_NOT_FOUND", f"entity '{entity}' does not exist or is not granted to this key")

    def check_profile_table(self, entity: str, table: str) -> None:
        self.check_entity(entity)
        if table != self.profile_table:
            raise ApiError(404, "TABLE_NOT_FOUND", f"profile table '{table}' does not exist in entity '{entity}'")

    def _lookup_key(self, attribute: Attribute, value: Any) -> Any:
        return value.lower() if attribute.value_type == "EMAIL" and isinstance(value, str) else value

    def _find(self, name: str, value: Any) -> int | None:
        attribute = self.attributes[name]
        return self._index.get(name, {}).get(self._lookup_key(attribute, value))

    def _reindex(self, profile: dict[str, Any], *, remove: bool = False) -> None:
        for name, value in profile["attributes"].items():
            attribute = self.attributes.get(name)
            if attribute is None or not attribute.unique or value is None:
                continue
            index = self._index.setdefault(name, {})
            if remove:
                index.pop(self._lookup_key(attribute, value), None)
            else:
                index[self._lookup_key(attribute, value)] = profile["profileId"]

    def _clean_attributes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        clean = {}
        for name, value in values.items():
            if name in TECHNICAL:
                raise ApiError(400, "TECHNICAL_ATTRIBUTE", f"'{name}' is set by Actito and cannot be written")
            attribute = self.attributes.get(name)
            if attribute is None:
                raise ApiError(400, "UNKNOWN_ATTRIBUTE", f"the profile table has no attribute '{name}'", attribute=name)
            clean[name] = attribute.clean(value)
        return clean

    def _clean_subscriptions(self, values: Mapping[str, Any]) -> dict[str, bool]:
        for name, value in values.items():
            if name not in self.subscriptions:
                raise ApiError(400, "UNKNOWN_SUBSCRIPTION", f"subscription '{name}' does not exist", subscription=name)
            if not isinstance(value, bool):
                raise ApiError(400, "INVALID_SUBSCRIPTION", f"subscription '{name}' must be true or false")
        return dict(values)

    def _check_segmentation(self, name: str) -> bool:
        if name not in self.segmentations:
            raise ApiError(404, "SEGMENTATION_NOT_FOUND", f"segmentation '{name}' does not exist", segmentation=name)
        return self.segmentations[name]

    def upsert_profile(
        self,
        values: Mapping[str, Any],
        *,
        subscriptions: Mapping[str, Any] | None = None,
        segmentations: Iterable[tuple[str, str, bool]] = (),
        key: Mapping[str, Any] | None = None,
        mode: str = "CREATE_UPDATE",
        collection: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Create or update one profile; (profile, created). ``key`` (v5) names the unique attribute to match
        on; without it (v4) the first unique attribute given that matches a profile is the match."""
        with self.lock:
            if isinstance(key, Mapping) and len(key) == 1:
                ((name, value),) = key.items()
                values = {name: value, **values}
            attributes = self._clean_attributes(values)
            subs = self._clean_subscriptions(subscriptions or {})
            segments = list(segmentations)
            for name, _, _ in segments:
                self._check_segmentation(name)
            match = self._match(attributes, key)
            if match is not None and mode == "CREATE_ONLY":
                raise ApiError(409, "PROFILE_ALREADY_EXISTS", f"profile {match} already holds this unique value")
            if match is None and mode == "UPDATE_ONLY":
                raise ApiError(404, "PROFILE_NOT_FOUND", "no profile matches the key")
            for name, value in attributes.items():
                if self.attributes[name].unique and value is not None:
                    holder = self._find(name, value)
                    if holder is not None and holder != match:
                        raise ApiError(409, "UNIQUE_VALUE_CONFLICT", f"another profile already has this {name}")
            if match is None:
                if not any(self.attributes[n].unique and v is not None for n, v in attributes.items()):
                    raise ApiError(400, "MISSING_UNIQUE_KEY", "a new profile needs a value for a unique attribute")
                missing = [a.name for a in self.attributes.values() if a.mandatory and attributes.get(a.name) is None]
                if missing:
                    raise ApiError(400, "MISSING_MANDATORY_ATTRIBUTE", f"mandatory attributes missing: {missing}")
                profile = {
                    "profileId": next(self._ids),
                    "attributes": {},
                    "subscriptions": {},
                    "segmentations": {},
                    "creationMoment": _stamp(),
                    "dataCollection": dict(collection or {}),
                }
                self.profiles[profile["profileId"]] = profile
            else:
                profile = self.profiles[match]
            self._reindex(profile, remove=True)
            for name, value in attributes.items():
                if value is None:
                    profile["attributes"].pop(name, None)
                else:
                    profile["attributes"][name] = value
            self._reindex(profile)
            profile["subscriptions"].update(subs)
            for name, category, belongs in segments:
                self._segment(profile, name, category, belongs)
            profile["updateMoment"] = _stamp()
            return profile, match is None

    def _match(self, attributes: Mapping[str, Any], key: Mapping[str, Any] | None) -> int | None:
        if key is not None:
            if not isinstance(key, Mapping) or len(key) != 1:
                raise ApiError(400, "INVALID_KEY", "key must name exactly one unique attribute and its value")
            ((name, value),) = key.items()
            attribute = self.attributes.get(name)
            if attribute is None or not attribute.unique:
                raise ApiError(400, "INVALID_KEY", f"'{name}' is not a unique attribute of the profile table")
            value = attribute.clean(value)
            if value is None:
                raise ApiError(400, "INVALID_KEY", f"the key '{name}' has no value")
            if attributes.get(name) not in (None, value):
                raise ApiError(400, "INVALID_KEY", f"the key and the attributes disagree on '{name}'")
            return self._find(name, value)
        for name, value in attributes.items():
            if self.attributes[name].unique and value is not None:
                found = self._find(name, value)
                if found is not None:
                    return found
        return None

    def profile(self, ref: str) -> dict[str, Any]:
        """A profile by id (``123``) or by a unique attribute (``emailAddress=ann@example.com``); 404 if none."""
        with self.lock:
            name, sep, value = ref.partition("=")
            if not sep:
                found = self.profiles.get(int(ref)) if ref.isdigit() else None
            else:
                attribute = self.attributes.get(name)
                if attribute is None or not attribute.unique:
                    raise ApiError(400, "INVALID_KEY", f"'{name}' is not a unique attribute of the profile table")
                found = self.profiles.get(self._find(name, value) or 0)
            if found is None:
                raise ApiError(404, "PROFILE_NOT_FOUND", f"no profile {ref}")
            return found

    def find_profile(self, name: str, value: Any) -> dict[str, Any] | None:
        """The profile whose unique attribute ``name`` is ``value``, or None (for tests)."""
        with self.lock:
            found = self._find(name, value)
            return self.profiles.get(found) if found is not None else None

    def delete_profile(self, ref: str) -> None:
        with self.lock:
            profile = self.profile(ref)
            self._reindex(profile, remove=True)
            del self.profiles[profile["profileId"]]

    def set_subscription(self, ref: str, name: str, value: bool) -> None:
        with self.lock:
            profile = self.profile(ref)
            profile["subscriptions"].update(self._clean_subscriptions({name: value}))
            profile["updateMoment"] = _stamp()

    def _segment(self, profile: dict[str, Any], name: str, category: str | None, belongs: bool) -> None:
        exclusive = self._check_segmentation(name)
        held: list[str] = profile["segmentations"].setdefault(name, [])
        if belongs:
            if not category:
                raise ApiError(400, "MISSING_CATEGORY", f"segmentation '{name}' needs a category")
            if exclusive:
                held[:] = [category]
            elif category not in held:
                held.append(category)
        elif category is None:
            held.clear()
        elif category in held:
            held.remove(category)
        if not held:
            del profile["segmentations"][name]

    def set_segmentation(self, ref: str, name: str, category: str | None, belongs: bool) -> None:
        with self.lock:
            profile = self.profile(ref)
            self._segment(profile, name, category, belongs)
            profile["updateMoment"] = _stamp()

    def members(self, segmentation: str, category: str) -> list[dict[str, Any]]:
        """Profiles in ``category`` of ``segmentation`` (for tests)."""
        with self.lock:
            return [p for p in self.profiles.values() if category in p["segmentations"].get(segmentation, ())]

    # -- custom tables ---------------------------------------------------------------------------------------------

    def table(self, entity: str, name: str) -> CustomTable:
        self.check_entity(entity)
        try:
            return self.tables[name]
        except KeyError:
            message = f"custom table '{name}' does not exist in entity '{entity}'"
            raise ApiError(404, "TABLE_NOT_FOUND", message) from None

    def upsert_record(self, table: CustomTable, values: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or update a record by its primary key; a CREATE in an INTERACTIONS table emits its events."""
        with self.lock:
            record: dict[str, Any] = {}
            for name, value in values.items():
                attribute = table.attributes.get(name)
                if attribute is None:
                    raise ApiError(400, "UNKNOWN_ATTRIBUTE", f"table {table.name} has no attribute '{name}'")
                record[name] = attribute.clean(value)
            key = record.get(table.primary_key)
            if key in (None, ""):
                raise ApiError(400, "MISSING_PRIMARY_KEY", f"'{table.primary_key}' is required in {table.name}")
            key = str(key)
            stored = self.records[table.name].get(key)
            if stored is None:
                missing = [a.name for a in table.attributes.values() if a.mandatory and record.get(a.name) is None]
                if missing:
                    raise ApiError(400, "MISSING_MANDATORY_ATTRIBUTE", f"{table.name}: mandatory {missing} missing")
            self._check_references(table, {**(stored or {}), **record})
            if stored is not None:
                stored.update(record)
                return stored, False
            self.records[table.name][key] = record
            for event in table.events:
                self.events.append(
                    {
                        "event": event,
                        "table": table.name,
                        "operation": "CREATE",
                        "businessKey": key,
                        "profile": record.get(table.profile_link) if table.profile_link else None,
                        "record": dict(record),
                        "at": _stamp(),
                    }
                )
            return record, True

    def _check_references(self, table: CustomTable, record: Mapping[str, Any]) -> None:
        link = table.profile_link
        if link is not None and record.get(link) is not None and self._find(link, record[link]) is None:
            raise ApiError(
                400,
                "FOREIGN_KEY_VIOLATION",
                f"{table.name}.{link}: no profile has {link} {record[link]!r}",
                reference="profile",
            )
        if table.parent is not None:
            parent, attribute = table.parent
            if str(record.get(attribute)) not in self.records.get(parent, {}):
                raise ApiError(
                    400,
                    "FOREIGN_KEY_VIOLATION",
                    f"{table.name}.{attribute}: no {parent} record {record.get(attribute)!r}",
                    reference=parent,
                )

    # -- transactional mail -------------------------------------------------------------------------------------

    def send_mail(self, campaign: str, profile_values: Mapping[str, Any], parameters: Mapping[str, list[str]]) -> int:
        """Create or update the recipient's profile, then record the mail; returns the profile id."""
        with self.lock:
            if self.campaigns is not None:
                if campaign not in self.campaigns:
                    raise ApiError(404, "CAMPAIGN_NOT_FOUND", f"no transactional campaign '{campaign}'")
                if not self.campaigns[campaign]:
                    raise ApiError(400, "CAMPAIGN_NOT_ACTIVE", f"campaign '{campaign}' is not in progress")
            profile, _ = self.upsert_profile(profile_values)
            self.mails.append(
                {
                    "campaign": campaign,
                    "profileId": profile["profileId"],
                    "attributes": dict(profile["attributes"]),
                    "parameters": {name: list(values) for name, values in parameters.items()},
                    "at": _stamp(),
                }
            )
            return int(profile["profileId"])

    # -- bulk imports ---------------------------------------------------------------------------------------------

    def start_import(self, table: str, custom: bool, data: bytes, parameters: Mapping[str, Any]) -> Import:
        """Check the quota, the file and the parameters, apply the lines, and keep the report for polling."""
        with self.lock:
            day = self.today()
            if self.import_counts[(table, day)] >= self.imports_per_day:
                self.refused_imports += 1
                raise ApiError(
                    429,
                    "IMPORT_QUOTA_EXCEEDED",
                    f"table '{table}' already had its {self.imports_per_day} imports today",
                    table=table,
                    limit=self.imports_per_day,
                )
            mode, key, header, rows = _imports.read(data, parameters, self.max_zip_bytes)
            self.import_counts[(table, day)] += 1
            job = Import(next(self._import_ids), table, day, time.monotonic() + self.import_seconds, total=len(rows))
            if custom:
                custom_table = self.tables[table]
                _imports.apply(job, header, rows, key, lambda cells: self.upsert_record(custom_table, cells)[1])
            else:
                _imports.apply(job, header, rows, key, lambda cells: self._import_profile(cells, key, mode))
            self.imports[job.id] = job
            return job

    def _import_profile(self, cells: Mapping[str, str], key: str, mode: str) -> bool:
        values, subscriptions, segments = _imports.profile_line(cells)
        if key not in values:
            raise ApiError(400, "MISSING_KEY_VALUE", f"the line has no value for {key}")
        _, created = self.upsert_profile(
            values, subscriptions=subscriptions, segmentations=segments, key={key: values[key]}, mode=mode
        )
        return created

    def import_job(self, entity: str, import_id: int) -> Import:
        self.check_entity(entity)
        with self.lock:
            try:
                return self.imports[import_id]
            except KeyError:
                raise ApiError(404, "IMPORT_NOT_FOUND", f"no import {import_id}") from None

    def imports_today(self, table: str) -> int:
        with self.lock:
            return self.import_counts[(table, self.today())]

    # -- inspection -----------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the licence holds and received, JSON-ready, for ``GET /_emulator/state``."""
        with self.lock:
            return {
                "entity": self.entity,
                "profile_table": self.profile_table,
                "profiles": list(self.profiles.values()),
                "records": {name: list(rows.values()) for name, rows in self.records.items()},
                **{f"records {name}": len(rows) for name, rows in self.records.items()},
                "events": list(self.events),
                "mails": list(self.mails),
                "imports": [job.public(time.monotonic()) for job in self.imports.values()],
                "imports_today": {table: n for (table, day), n in self.import_counts.items() if day == self.today()},
                "refused_imports": self.refused_imports,
                "tokens_issued": self.tokens_issued,
                "requests": self.requests,
                "max_in_flight": self.max_in_flight,
                "concurrency_refusals": self.concurrency_refusals,
                "throttled": self.throttled,
            }
