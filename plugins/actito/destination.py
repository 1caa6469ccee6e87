"""The ``actito`` destination: profiles, orders, segments and triggers to Actito, one by one or in bulk imports.

Each kind's guarantee, for a request whose outcome is unknown (sent, no answer):

- ``contact_upsert`` at least once: every write is an upsert on the profile table's unique key (v5 ``key``, v4
  ``allowUpdate``, import mode ``CREATE_UPDATE`` with that key as ``headerKeyColumn``), so doing it twice is
  doing it once.
- ``contact_delete`` at least once: a profile already gone is ``skipped``.
- ``order`` at least once: orders and lines are records upserted on primary keys derived from hub's ids;
  INTERACTIONS tables emit their scenario event on CREATE only, so a repeat neither duplicates nor re-fires.
- ``segment_membership`` at least once: putting a profile in a category, or taking it out, is idempotent.
- ``trigger`` at most once: a transactional mail has no idempotency key. A trigger that inserts an interaction
  row (``table:`` targets, e.g. abandoned carts) is an upsert, so its lost answer is reported ``retryable``.

Reads (import polling) never make an outcome unknown; a token request that fails never does either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from hub.connectors import CheckResult, ClientOptions, ConnectorContext, Destination, KindSpec, Outgoing
from hub.delivery.auth import TokenError
from hub.delivery.outcomes import InvalidMessage, Outcome
from hub_plugins.actito._errors import PROFILE_PENDING_RETRY, failure, json_body, record_outcome, waits_for_reference
from hub_plugins.actito.auth import ActitoTokenAuth
from hub_plugins.actito.bulk import Importer, ImportLedger, ImportResult, csv_table
from hub_plugins.actito.csvformat import SUBSCRIPTION
from hub_plugins.actito.records import interaction_row, mail_parameters, order_rows
from hub_plugins.actito.settings import ActitoSettings

#: Messages one batch of the bulk-capable kinds may hold: the bulk import takes them in one file.
BULK_BATCH = 10_000
_NESTED_OK = ("subscriptions",)


def _named(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


class ActitoDestination(Destination):
    """Actito (Integration Framework APIs): profiles upserted on a unique attribute, subscriptions as consents,
    segmentations, orders and carts in INTERACTIONS tables, transactional mails; bulk imports for large batches."""

    type = "actito"
    Settings = ActitoSettings
    description = "Actito: profiles, subscriptions, segmentations, orders (custom tables), transactional mails"
    #: Actito allows 100 calls a minute per licence (more are slowed down, not refused).
    default_rate_limit: ClassVar[float] = 100 / 60
    kinds: ClassVar[Mapping[str, KindSpec]] = {
        "contact_upsert": KindSpec(
            BULK_BATCH, "at_least_once", "upserts on the profiles' unique key; large batches go as one bulk import"
        ),
        "contact_delete": KindSpec(1, "at_least_once", "a profile already gone is skipped"),
        "order": KindSpec(
            BULK_BATCH, "at_least_once", "records upserted on keys from hub's ids; only a CREATE fires the scenario"
        ),
        "segment_membership": KindSpec(1, "at_least_once", "adding to or removing from a category is idempotent"),
        "trigger": KindSpec(1, "at_most_once", "a transactional mail has no idempotency key; a repeat mails twice"),
    }
    settings: ActitoSettings

    def __init__(self, settings: ActitoSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.auth = ActitoTokenAuth(settings.api_key)
        self.ledger = ImportLedger(settings.imports_per_day, settings.timezone)
        self.importer = Importer(
            lambda: self.http,
            quote(settings.entity, safe=""),
            self.ledger,
            poll_interval=settings.poll_interval,
            poll_timeout=settings.poll_timeout,
        )
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- paths ------------------------------------------------------------------------------------------------------

    @property
    def _v4(self) -> str:
        return f"/v4/entity/{quote(self.settings.entity, safe='')}"

    def _profile(self, key: Mapping[str, str] | None = None, profile_id: str | None = None) -> str:
        table = quote(self.settings.profile_table, safe="")
        if profile_id is not None:
            ref = quote(profile_id, safe="")
        else:
            assert key is not None
            ((name, value),) = key.items()
            ref = f"{quote(name, safe='')}={quote(value, safe='@+')}"
        return f"{self._v4}/table/{table}/profile/{ref}"

    def _records(self, table: str) -> str:
        return f"{self._v4}/customTable/{quote(table, safe='')}/record"

    # -- configuration ------------------------------------------------------------------------------------------

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url=self.settings.url(), headers={"Accept": "application/json"}, auth=self.auth)

    def check(self) -> CheckResult:
        """Get a token, list the entities, find the entity and its profile table: host, key and names together."""
        url, entity, table = self.settings.url(), self.settings.entity, self.settings.profile_table
        own = self._http is None
        if own:
            options = self.client_options()
            auth = ActitoTokenAuth(self.settings.api_key)
            client = httpx.Client(base_url=url, headers=dict(options.headers), auth=auth, timeout=10)
        else:
            client = self.http
        try:
            entities = client.get("/v5/entities")
            tables = client.get(f"/v5/entities/{quote(entity, safe='')}/profile-tables")
        except TokenError as exc:
            code = exc.response.status_code if exc.response is not None else None
            if code in (400, 401, 403):
                return CheckResult(False, f"{url} refused the API key (HTTP {code} from /auth/token); check api_key")
            return CheckResult(False, f"{url} answers, but /auth/token gave HTTP {code}: is it an Actito API host?")
        except httpx.TransportError as exc:
            return CheckResult(False, f"cannot reach {url} ({type(exc).__name__}); check base_url and the network")
        finally:
            if own:
                client.close()
        if 429 in (entities.status_code, tables.status_code):
            return CheckResult(True, f"{url} knows the API key, but is refusing calls right now (HTTP 429)")
        names = [e.get("name") for e in json_body(entities).get("entities") or [] if isinstance(e, dict)]
        if entities.status_code != 200 or not names:
            code = entities.status_code
            return CheckResult(False, f"{url} answers but is not an Actito API (GET /v5/entities gave HTTP {code})")
        if entity not in names:
            return CheckResult(False, f"the API key works, but entity {entity!r} is not granted to it ({names})")
        found = [t.get("name") for t in json_body(tables).get("profileTables") or [] if isinstance(t, dict)]
        if table not in found:
            return CheckResult(False, f"entity {entity!r} has no profile table {table!r} (it has {found})")
        return CheckResult(True, f"Actito at {url} works with this API key: entity {entity}, profile table {table}")

    # -- prepare --------------------------------------------------------------------------------------------------

    def _key(self, view: Mapping[str, Any]) -> dict[str, str] | None:
        """The profile key (``{key_attribute: value}``) from the mapped view, else from the customer's keys."""
        name = self.settings.key_attribute
        value = view.get(name)
        if value in (None, ""):
            keys = view.get("_hub") or {}
            source = self.settings.key_from
            if source.startswith("external_id:"):
                value = (keys.get("external_ids") or {}).get(source.partition(":")[2])
            else:
                value = keys.get(source)
        return {name: str(value)} if value not in (None, "") else None

    def _required_key(self, view: Mapping[str, Any], what: str) -> dict[str, str]:
        key = self._key(view)
        if key is None:
            customer = (view.get("_hub") or {}).get("customer_id")
            raise InvalidMessage(
                f"{what} for customer {customer} has no {self.settings.key_attribute} (settings.key_from: "
                f"{self.settings.key_from}), the unique key Actito profiles are matched on"
            )
        return key

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        if kind == "contact_upsert":
            return self._prepare_profile(view)
        if kind == "contact_delete":
            keys = view.get("_hub") or {}
            return {"key": self._key(view), "remote_id": keys.get("remote_id"), "merged_into": keys.get("merged_into")}
        if kind == "order":
            if not view.get("_hub"):
                raise InvalidMessage("the order has no customer; Actito interaction rows belong to a profile")
            return order_rows(view, self._required_key(view, "the order"), self.settings.timezone)
        if kind == "segment_membership":
            if view.get("change") not in ("entered", "left") or not view.get("segment"):
                raise InvalidMessage("a segment change needs segment and change (entered or left)")
            target = self.settings.segment_target(str(view["segment"]))
            return {
                "key": self._required_key(view, "the segment change"),
                "segmentation": target.segmentation,
                "category": target.category,
                "belongs": view["change"] == "entered",
            }
        if kind == "trigger":
            return self._prepare_trigger(view)
        raise InvalidMessage(f"Actito does not take {kind} messages")

    def _prepare_profile(self, view: Mapping[str, Any]) -> dict[str, Any]:
        key = self._required_key(view, "the profile")
        attributes: dict[str, Any] = {}
        for name, value in view.items():
            if name == "_hub" or name in _NESTED_OK:
                continue
            if isinstance(value, dict | list):
                raise InvalidMessage(f"mapped field {name!r} is not a single value; Actito attributes are flat")
            attributes[name] = value
        attributes.update(key)
        subscriptions = {}
        for name, value in (view.get("subscriptions") or {}).items():
            if value is None:
                continue
            if not isinstance(value, bool):
                raise InvalidMessage(f"subscription {name!r} must be true or false, not {value!r}")
            subscriptions[name] = value
        return {"key": key, "attributes": attributes, "subscriptions": subscriptions}

    def _prepare_trigger(self, view: Mapping[str, Any]) -> dict[str, Any]:
        target = str(view.get("trigger_id") or "")
        if not target or target in ("table:", "mail:"):
            raise InvalidMessage("the trigger has no trigger_id (a campaign name, mail:<campaign> or table:<table>)")
        data = view.get("data") or {}
        if not isinstance(data, dict):
            raise InvalidMessage("a trigger's data must be an object of named values")
        key = self._required_key(view, "the trigger")
        if target.startswith("table:"):
            table = target.partition(":")[2]
            return {"table": table, "row": interaction_row(target, data, key, self.settings.timezone)}
        return {"campaign": target.removeprefix("mail:"), "key": key, "parameters": mail_parameters(data)}

    # -- send -----------------------------------------------------------------------------------------------------

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        if kind in ("contact_upsert", "order"):
            return self._send_bulkable(kind, batch)
        handler = {
            "contact_delete": self._delete,
            "segment_membership": self._segment,
            "trigger": self._trigger,
        }.get(kind)
        if handler is None:
            return [Outcome.invalid(f"Actito does not take {kind} messages") for _ in batch]
        return self._each(handler, batch)

    @staticmethod
    def _each(handler: Callable[[Outgoing], Outcome], batch: list[Outgoing]) -> list[Outcome]:
        outcomes = []
        for message in batch:
            try:
                outcomes.append(handler(message))
            except (TokenError, httpx.TransportError) as exc:
                outcomes.append(failure(exc))
        return outcomes

    def _tables(self, kind: str) -> tuple[str, ...]:
        if kind == "order":
            return (self.settings.orders_table, self.settings.order_lines_table)
        return (self.settings.profile_table,)

    def _send_bulkable(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        """A large batch goes as one bulk import while the day's quota lasts; a small one, one by one. With no
        import left today, ``one_by_one_max`` messages go one by one and the rest wait for tomorrow's quota."""
        one = self._upsert if kind == "contact_upsert" else self._order
        if len(batch) < self.settings.bulk_threshold:
            return self._each(one, batch)
        tables = self._tables(kind)
        if self.ledger.reserve(*tables):
            outcomes = self._bulk_profiles(batch) if kind == "contact_upsert" else self._bulk_orders(batch)
            if outcomes is not None:
                return outcomes
        now = min(len(batch), self.settings.one_by_one_max)
        later = Outcome.retryable(
            None,
            f"no bulk import of {'/'.join(tables)} left today ({self.settings.imports_per_day} a day); "
            f"{now} of {len(batch)} went one by one, the rest wait for the quota's next day",
            retry_after=self.ledger.seconds_to_reset(),
        )
        return self._each(one, batch[:now]) + [later] * (len(batch) - now)

    # -- one by one -----------------------------------------------------------------------------------------------

    def _collection(self) -> dict[str, str]:
        moment = self.clock().astimezone(ZoneInfo(self.settings.timezone)).strftime("%Y-%m-%d %H:%M:%S")
        return {"source": self.settings.source, "way": "api", "date": moment}

    def _upsert(self, message: Outgoing) -> Outcome:
        payload = message.payload
        table = quote(self.settings.profile_table, safe="")
        if self.settings.api_version == "v5":
            response = self.http.put(
                f"/v5/entities/{quote(self.settings.entity, safe='')}/profile-tables/{table}/profiles",
                json={name: payload[name] for name in ("key", "attributes", "subscriptions")},
            )
        else:
            response = self.http.post(
                f"{self._v4}/table/{table}/profile",
                params={"allowUpdate": "true"},
                json={
                    "attributes": _named(payload["attributes"]),
                    "subscriptions": [{"name": n, "subscribe": v} for n, v in payload["subscriptions"].items()],
                    "dataCollectionInformation": self._collection(),
                },
            )
        profile_id = json_body(response).get("profileId") if response.status_code < 300 else None
        return Outcome.from_response(response, ref=str(profile_id) if profile_id is not None else None)

    def _order(self, message: Outgoing) -> Outcome:
        """The order row, then each line. Every row is an upsert, so after a lost answer the rest still go
        (the order is then ``unknown`` and resent whole); any refusal stops it at once."""
        payload = message.payload
        orders, lines = self._tables("order")
        requests = [(orders, payload["order"]), *((lines, line) for line in payload["lines"])]
        lost: Outcome | None = None
        for table, row in requests:
            try:
                response = self.http.post(self._records(table), json={"properties": _named(row)})
            except (TokenError, httpx.TransportError) as exc:
                outcome = failure(exc)
                if outcome.status != "unknown":
                    return outcome
                lost = outcome
                continue
            if response.status_code >= 300:
                return record_outcome(response)
        return lost or Outcome.sent(code=200)

    def _delete(self, message: Outgoing) -> Outcome:
        payload = message.payload
        profile_id = message.remote_ref or payload.get("remote_id")
        if profile_id:
            response = self.http.delete(self._profile(profile_id=str(profile_id)))
            if response.status_code != 404:
                return Outcome.from_response(response)
        if payload.get("merged_into") is not None:
            # The survivor may share this customer's keys: deleting by key could delete the survivor's profile.
            return Outcome.skipped("merged customer: its profile is deleted only by its own profile id")
        if not payload.get("key"):
            return Outcome.skipped("no profile id and no key: it was never delivered")
        response = self.http.delete(self._profile(payload["key"]))
        if response.status_code == 404:
            return Outcome.skipped("Actito has no such profile")
        return Outcome.from_response(response)

    def _segment(self, message: Outgoing) -> Outcome:
        payload = message.payload
        spec = f"{quote(payload['segmentation'], safe='')};category={quote(payload['category'], safe='')}"
        path = f"{self._profile(payload['key'])}/segmentation/{spec}"
        if payload["belongs"]:
            return record_outcome(self.http.put(path))
        response = self.http.delete(path)
        if response.status_code == 404 and json_body(response).get("code") == "PROFILE_NOT_FOUND":
            return Outcome.skipped("Actito has no such profile: nothing to take out of the segment")
        return Outcome.from_response(response)

    def _trigger(self, message: Outgoing) -> Outcome:
        payload = message.payload
        if "table" in payload:
            try:
                response = self.http.post(self._records(payload["table"]), json={"properties": _named(payload["row"])})
            except httpx.TransportError as exc:
                outcome = failure(exc)
                # An interaction row is an upsert on its key: sending it again cannot fire the scenario twice.
                return Outcome.retryable(None, outcome.body) if outcome.status == "unknown" else outcome
            return record_outcome(response)
        profile = {"attributes": _named(payload["key"]), "dataCollection": self._collection()}
        response = self.http.post(
            f"{self._v4}/transactionalmail/{quote(payload['campaign'], safe='')}/contact",
            json={"profile": profile, "parameters": payload["parameters"]},
        )
        return Outcome.from_response(response)

    # -- bulk -----------------------------------------------------------------------------------------------------

    def _bulk_profiles(self, batch: list[Outgoing]) -> list[Outcome] | None:
        """One import of the whole batch; None when Actito refused it for the quota (the caller falls back)."""
        rows = [
            {**m.payload["attributes"], **{SUBSCRIPTION + n: v for n, v in m.payload["subscriptions"].items()}}
            for m in batch
        ]
        key = self.settings.key_attribute
        header, cells = csv_table(rows, first=[key])
        result = self.importer.run(
            self.settings.profile_table,
            custom=False,
            header=header,
            rows=cells,
            key_column=key,
            messages=tuple(m.id for m in batch),
        )
        if result.quota_refused:
            return None
        return _row_outcomes(result, len(batch), self.settings.profile_table)

    def _bulk_orders(self, batch: list[Outgoing]) -> list[Outcome] | None:
        """Orders, then the lines of the orders Actito took (a line needs its order); two imports."""
        orders_table, lines_table = self._tables("order")
        ids = tuple(m.id for m in batch)
        header, cells = csv_table([m.payload["order"] for m in batch], first=["orderId"])
        orders = self.importer.run(
            orders_table, custom=True, header=header, rows=cells, key_column="orderId", messages=ids
        )
        if orders.failure is not None:
            self.ledger.release(lines_table)
            return None if orders.quota_refused else [orders.failure] * len(batch)
        outcomes = _row_outcomes(orders, len(batch), orders_table)
        owners = [i for i, m in enumerate(batch) if outcomes[i].status == "sent" for _ in m.payload["lines"]]
        lines = [line for i, m in enumerate(batch) if outcomes[i].status == "sent" for line in m.payload["lines"]]
        if not lines:
            self.ledger.release(lines_table)
            return outcomes
        header, cells = csv_table(lines, first=["lineId"])
        result = self.importer.run(
            lines_table, custom=True, header=header, rows=cells, key_column="lineId", messages=ids
        )
        if result.quota_refused:
            return None
        for index, owner in enumerate(owners):
            if result.failure is not None:
                outcomes[owner] = result.failure
            elif index in result.errors and outcomes[owner].status == "sent":
                outcomes[owner] = _row_outcome(result.errors[index], lines_table)
        return outcomes


def _row_outcome(error: Any, table: str) -> Outcome:
    text = f"{table} line {error.line}: {error.code}: {error.message}"
    if waits_for_reference(error.code):
        return Outcome.retryable(400, text, retry_after=PROFILE_PENDING_RETRY)
    return Outcome.rejected(400, text)


def _row_outcomes(result: ImportResult, count: int, table: str) -> list[Outcome]:
    """One outcome per row of an import: its failure for all, else sent or the row's rejection."""
    if result.failure is not None:
        return [result.failure] * count
    sent = Outcome.sent(code=200)
    return [_row_outcome(result.errors[i], table) if i in result.errors else sent for i in range(count)]
