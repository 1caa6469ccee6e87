"""The ``voyado`` destination: contacts, receipts and custom triggers to Voyado Engage, one request per message.

Each kind's guarantee, for a request whose outcome is unknown (sent, no answer):

- ``contact_upsert`` at least once: an update by contact id is idempotent, and a create always follows a lookup
  by the match key, so a retried create finds the contact the lost attempt made (Engage also answers a create
  for an existing key with that contact).
- ``contact_delete`` at least once: deleting twice deletes once; a 404 is ``skipped``.
- ``order`` at least once: receipts carry ``uniqueReceiptId`` and Engage ignores one it already has.
- ``trigger`` at most once: custom triggers take no idempotency key and cannot be looked up afterwards.

Steps that only read (the contact lookup) never make an outcome unknown: if they fail in transit nothing was
changed, so the message is ``retryable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from hub.connectors import CheckResult, ClientOptions, Destination, KindSpec, Outgoing
from hub.delivery.outcomes import InvalidMessage, Outcome
from hub_plugins.voyado.receipts import build_receipt
from hub_plugins.voyado.settings import VoyadoSettings

#: match_key -> the ``GET /api/v2/contacts/id`` parameter (member number and external id are the tenant's
#: ``customKey``) and the receipt ``matchKeyType``.
LOOKUP_PARAMETER = {
    "email": "email",
    "mobilePhone": "mobilePhone",
    "externalId": "customKey",
    "memberNumber": "customKey",
}
MATCH_KEY_TYPE = {
    "email": "Email",
    "mobilePhone": "MobilePhone",
    "externalId": "ExternalId",
    "memberNumber": "MemberNumber",
}
#: Seconds before a receipt or trigger for a contact Engage does not know yet is tried again.
CONTACT_PENDING_RETRY = 60.0


class _Stop(Exception):
    """Ends one message's send early with ``outcome`` (a lookup failed, a conflict, nothing to do)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.status)
        self.outcome = outcome


class VoyadoDestination(Destination):
    """Voyado Engage (REST API v2): contacts by email, phone, member number or external id; purchases as
    receipts with lines and returns; custom triggers that start automations."""

    type = "voyado"
    Settings = VoyadoSettings
    description = "Voyado Engage: contacts, receipts (purchases and returns) and custom triggers"
    #: Engage asks integrations to stay under 50 requests per second per API key (429 above 200).
    default_rate_limit: ClassVar[float] = 50.0
    kinds: ClassVar[Mapping[str, KindSpec]] = {
        "contact_upsert": KindSpec(
            1, "at_least_once", "updates go by contact id; a create always follows a lookup by the match key"
        ),
        "contact_delete": KindSpec(1, "at_least_once", "DELETE is idempotent; a contact already gone is skipped"),
        "order": KindSpec(1, "at_least_once", "receipts carry uniqueReceiptId; Engage ignores a duplicate"),
        "trigger": KindSpec(1, "at_most_once", "custom triggers have no idempotency key; a repeat mails twice"),
    }
    settings: VoyadoSettings

    # -- configuration ------------------------------------------------------------------------------------------

    def client_options(self) -> ClientOptions:
        return ClientOptions(
            base_url=self.settings.url(),
            headers={
                "apikey": self.settings.api_key.get_secret_value(),
                "User-Agent": self.settings.user_agent,
                "Accept": "application/json",
            },
        )

    def check(self) -> CheckResult:
        """``GET /api/v2/contacts/count``: the cheapest call that proves host, path and key together."""
        url = self.settings.url()
        try:
            if self._http is not None:
                response = self.http.get("/api/v2/contacts/count")
            else:
                options = self.client_options()
                with httpx.Client(base_url=options.base_url, headers=dict(options.headers), timeout=10) as client:
                    response = client.get("/api/v2/contacts/count")
        except httpx.TransportError as exc:
            return CheckResult(False, f"cannot reach {url} ({type(exc).__name__}); check base_url and the network")
        code = response.status_code
        if code in (401, 403):
            return CheckResult(False, f"{url} refused the API key (HTTP {code}); check api_key")
        if code == 429:
            return CheckResult(True, f"{url} answers and knows the key, but is rate-limiting it right now (HTTP 429)")
        try:
            count = response.json() if code == 200 else None
        except ValueError:
            count = None
        if not isinstance(count, int) or isinstance(count, bool):
            return CheckResult(
                False, f"{url} answers but is not a Voyado Engage API (GET /api/v2/contacts/count gave HTTP {code})"
            )
        return CheckResult(True, f"Voyado Engage at {url} works with this API key ({count} contacts)")

    # -- prepare --------------------------------------------------------------------------------------------------

    def _match(self, view: Mapping[str, Any]) -> dict[str, str] | None:
        """The match key and its value for the customer of ``view``, from the mapped fields or the ``_hub`` keys."""
        keys = view.get("_hub") or {}
        key = self.settings.match_key
        if key == "email":
            value = view.get("email") or keys.get("email")
        elif key == "mobilePhone":
            value = view.get("mobilePhone") or keys.get("phone")
        elif key == "memberNumber":
            value = view.get("memberNumber") or keys.get("member_no")
        else:
            source = self.settings.external_id_source
            value = view.get("externalId") or ((keys.get("external_ids") or {}).get(source) if source else None)
        return {"key": key, "value": str(value)} if value not in (None, "") else None

    def _required_match(self, view: Mapping[str, Any], what: str) -> dict[str, str]:
        match = self._match(view)
        if match is None:
            customer = (view.get("_hub") or {}).get("customer_id")
            raise InvalidMessage(
                f"{what} for customer {customer} has no {self.settings.match_key}, the key Voyado contacts are "
                "matched by (settings.match_key)"
            )
        return match

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        if kind == "contact_upsert":
            match = self._required_match(view, "the contact")
            contact = {name: value for name, value in view.items() if name not in ("_hub", "contactType")}
            if contact.get(match["key"]) in (None, ""):
                contact[match["key"]] = match["value"]
            return {"match": match, "contact": contact}
        if kind == "contact_delete":
            keys = view.get("_hub") or {}
            return {
                "match": self._match(view),
                "remote_id": keys.get("remote_id"),
                "merged_into": keys.get("merged_into"),
            }
        if kind == "order":
            if not view.get("_hub"):
                raise InvalidMessage("the order has no customer; Voyado receipts belong to a contact")
            match = self._required_match(view, "the order")
            contact = {
                "matchKey": match["value"],
                "matchKeyType": MATCH_KEY_TYPE[match["key"]],
                "contactType": self.settings.contact_type,
            }
            return build_receipt(
                view,
                contact,
                timezone=self.context.timezone,
                store_external_id=self.settings.store_external_id,
                currency=self.settings.currency,
                payment_method=self.settings.payment_method,
            )
        if kind == "trigger":
            if not view.get("trigger_id"):
                raise InvalidMessage("the trigger has no trigger_id")
            data = view.get("data") or {}
            if not isinstance(data, dict):
                raise InvalidMessage("a trigger's data must be an object of named values")
            return {
                "trigger_id": str(view["trigger_id"]),
                "data": flatten_trigger_data(data),
                "match": self._required_match(view, "the trigger"),
            }
        raise InvalidMessage(f"Voyado does not take {kind} messages")

    # -- send -----------------------------------------------------------------------------------------------------

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        handler = {
            "contact_upsert": self._upsert,
            "contact_delete": self._delete,
            "order": self._receipt,
            "trigger": self._trigger,
        }.get(kind)
        if handler is None:
            return [Outcome.invalid(f"Voyado does not take {kind} messages") for _ in batch]
        outcomes = []
        for message in batch:
            try:
                outcomes.append(handler(message))
            except _Stop as stop:
                outcomes.append(stop.outcome)
            except httpx.TransportError as exc:
                outcomes.append(Outcome.from_error(exc))
        return outcomes

    def _read(self, path: str, params: dict[str, str]) -> httpx.Response:
        """A GET that changes nothing: a transport failure is retryable whatever the error, never unknown."""
        try:
            return self.http.get(path, params=params)
        except httpx.TransportError as exc:
            raise _Stop(Outcome.retryable(None, f"{type(exc).__name__}: {exc}".rstrip(": "))) from exc

    def _lookup(self, match: Mapping[str, str], *, first_of_many: bool) -> str | None:
        """The contact id for ``match`` in the configured contact type, or None if Engage has no such contact.

        Several matches: the first one when ``first_of_many`` (as Engage's own integrations do), else rejected.
        """
        params = {LOOKUP_PARAMETER[match["key"]]: match["value"], "contactType": self.settings.contact_type}
        response = self._read("/api/v2/contacts/id", params)
        if response.status_code == 200:
            try:
                found = response.json()
            except ValueError:
                found = None
            if isinstance(found, str) and found:
                return found
            raise _Stop(Outcome.retryable(200, f"contact lookup answered without an id: {response.text[:200]}"))
        if response.status_code == 404:
            return None
        if response.status_code == 409 and first_of_many:
            matches = _json(response).get("multipleMatchesFound") or []
            if matches:
                return str(matches[0])
        raise _Stop(Outcome.from_response(response))

    def _upsert(self, message: Outgoing) -> Outcome:
        match, contact = message.payload["match"], message.payload["contact"]
        if message.remote_ref:
            response = self.http.post(f"/api/v2/contacts/{quote(message.remote_ref)}", json=contact)
            if response.status_code != 404:
                return Outcome.from_response(response, ref=message.remote_ref)
            # Deleted in Engage since we last sent it: find it again by key, or create it anew.
        found = self._lookup(match, first_of_many=True)
        if found:
            return Outcome.from_response(self.http.post(f"/api/v2/contacts/{quote(found)}", json=contact), ref=found)
        response = self.http.post(
            "/api/v2/contacts",
            json={**contact, "contactType": self.settings.contact_type},
            headers={"source": self.settings.source},
        )
        if response.status_code >= 300:
            return Outcome.from_response(response)
        ref = _json(response).get("id")
        return Outcome.sent(str(ref) if ref else None, code=response.status_code)

    def _delete(self, message: Outgoing) -> Outcome:
        payload = message.payload
        ref = message.remote_ref or payload.get("remote_id")
        if not ref:
            if payload.get("merged_into") is not None:
                # The survivor may share this customer's keys: a lookup could find the survivor's contact.
                return Outcome.skipped("merged customer never had a Voyado contact id; nothing is deleted by key")
            if not payload.get("match"):
                return Outcome.skipped("no Voyado contact id and no match key: it was never delivered")
            ref = self._lookup(payload["match"], first_of_many=False)
            if ref is None:
                return Outcome.skipped("Voyado has no such contact")
        response = self.http.delete(f"/api/v2/contacts/{quote(ref)}", headers={"source": self.settings.source})
        if response.status_code == 404:
            return Outcome.skipped("the contact was already gone from Voyado")
        return Outcome.from_response(response, ref=ref)

    def _receipt(self, message: Outgoing) -> Outcome:
        receipt = message.payload
        if message.remote_ref:
            by_id = {**receipt, "contact": {"matchKey": message.remote_ref, "matchKeyType": "ContactId"}}
            response = self.http.post("/api/v2/receipts", json=by_id)
            if response.status_code != 404:
                return Outcome.from_response(response)
        return _contact_pending(self.http.post("/api/v2/receipts", json=receipt))

    def _trigger(self, message: Outgoing) -> Outcome:
        payload = message.payload
        base = f"/api/v2/automation/customTriggers/{quote(payload['trigger_id'], safe='')}"
        if message.remote_ref:
            response = self.http.post(f"{base}/triggerByContactId/{quote(message.remote_ref)}", json=payload["data"])
            if response.status_code != 404:
                return Outcome.from_response(response)
        contact_id = self._lookup(payload["match"], first_of_many=True)
        if contact_id is None:
            return Outcome.retryable(404, "Voyado has no such contact yet", retry_after=CONTACT_PENDING_RETRY)
        return _contact_pending(
            self.http.post(f"{base}/triggerByContactId/{quote(contact_id)}", json=payload["data"]), ref=contact_id
        )


def _camel(*parts: str) -> str:
    """``("order", "unit_price")`` -> ``orderUnitPrice``: Engage's own field names are camelCase."""
    words = [word for part in parts for word in part.replace("-", "_").split("_") if word]
    if not words:
        return ""
    return words[0][:1].lower() + words[0][1:] + "".join(word[:1].upper() + word[1:] for word in words[1:])


def _singular(name: str) -> str:
    """``accessories`` -> ``accessory``, ``lines`` -> ``line``: numbered keys read as one item each."""
    if name.endswith("ies") and len(name) > 3:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 1:
        return name[:-1]
    return name


def flatten_trigger_data(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """A custom trigger's body: Engage takes a flat object of scalars that its templates address by name.

    Nested objects join their keys in camelCase (``customer.first_name`` -> ``customerFirstName``); a list of
    objects becomes numbered keys from 1 and a count (``accessories`` -> ``accessory1Sku``, ...,
    ``accessoryCount``); a list of scalars becomes comma-joined text. Nulls are left out (an absent field and an
    empty one look the same in a template). The first of two values that flatten to one key wins.
    """
    flat: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value is not None and key not in flat:
            flat[key] = value

    for name, value in data.items():
        path = (*prefix, str(name))
        if isinstance(value, Mapping):
            for key, inner in flatten_trigger_data(value, path).items():
                put(key, inner)
        elif isinstance(value, list | tuple) and any(isinstance(item, Mapping) for item in value):
            items = [item for item in value if isinstance(item, Mapping)]
            single = (*path[:-1], _singular(path[-1]))
            for number, item in enumerate(items, 1):
                numbered = (*single[:-1], f"{single[-1]}_{number}")
                for key, inner in flatten_trigger_data(item, numbered).items():
                    put(key, inner)
            put(_camel(*single, "count"), len(items))
        elif isinstance(value, list | tuple):
            put(_camel(*path), ",".join(str(item) for item in value if item is not None))
        elif isinstance(value, str | int | float | bool) or value is None:
            put(_camel(*path), value)
        else:
            put(_camel(*path), str(value))
    return flat


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _contact_pending(response: httpx.Response, *, ref: str | None = None) -> Outcome:
    """A 404 for the contact means its create has not reached Engage yet (or failed): retry later, nothing
    happened; other answers are classified as usual."""
    if response.status_code == 404 and _json(response).get("errorCode", "ContactNotFound") == "ContactNotFound":
        return Outcome.retryable(404, response.text[:4000], retry_after=CONTACT_PENDING_RETRY)
    return Outcome.from_response(response, ref=ref)
