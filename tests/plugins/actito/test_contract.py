"""The Actito plugin against hub's destination contract (``hub.testing.DestinationContract``).

Every check runs: profiles, subscriptions as consent, orders as INTERACTIONS records, segmentations, transactional
mails, token expiry, and the pipeline with 30% faults. The batch-limit check sends one more than a batch of
contacts and of orders, so it also proves the bulk import path through the real dispatcher.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from starlette.applications import Starlette

from hub.sandbox import Emulator
from hub.testing import DestinationContract
from hub_plugins.actito import hub_emulators
from hub_plugins.actito._state import ActitoState
from hub_plugins.actito.destination import ActitoDestination

(ACTITO,) = hub_emulators()


def _state(app: Starlette) -> ActitoState:
    return app.state.actito  # type: ignore[no-any-return]


def _profiles(app: Starlette, email: str) -> list[dict[str, Any]]:
    state = _state(app)
    with state.lock:
        return [
            p for p in state.profiles.values() if (p["attributes"].get("emailAddress") or "").lower() == email.lower()
        ]


class TestActitoContract(DestinationContract):
    destination_type = ActitoDestination
    emulator: ClassVar[Emulator] = ACTITO
    timezone = "Europe/Brussels"
    #: The plugin's default (Actito's 100 calls a minute) would make the contract wait for its own limit; the
    #: emulator the hook serves does not throttle either.
    delivery: ClassVar[dict[str, Any]] = {"rate_limit": 1000}
    #: Actito refuses a bulk-import ZIP over 100 MB.
    payload_limit: ClassVar[int | None] = 100 * 1024 * 1024

    def contact_view(self, email: str, *, first_name: str, email_consent: bool | None) -> dict[str, Any]:
        """What mappings/actito.yaml makes of a customer: flat attributes, consent as the Newsletter subscription."""
        view: dict[str, Any] = {"emailAddress": email, "firstName": first_name, "_hub": self.hub_keys(email)}
        if email_consent is not None:
            view["subscriptions"] = {"Newsletter": email_consent}
        return view

    def invalid_contact_view(self, email: str) -> dict[str, Any]:
        """The mapping passes phone numbers on as they are; Actito refuses one that is not international (400)."""
        return {**self.contact_view(email, first_name="Bad", email_consent=None), "gsmNumber": "0470 12 34 56"}

    def remote_contact(self, app: Starlette, email: str) -> dict[str, Any] | None:
        found = _profiles(app, email)
        if not found:
            return None
        profile = found[0]
        return {
            "first_name": profile["attributes"].get("firstName"),
            "email_consent": profile["subscriptions"].get("Newsletter"),
            "id": profile["profileId"],
        }

    def remote_contact_count(self, app: Starlette, email: str) -> int:
        return len(_profiles(app, email))

    def remote_order_lines(self, app: Starlette, order_no: str) -> int:
        """Lines are records of ORDER_LINES keyed ``<order>:<line>``; a repeat upserts, so they never double."""
        state = _state(app)
        with state.lock:
            return sum(1 for r in state.records["ORDER_LINES"].values() if r["orderId"] == f"webshop:{order_no}")

    def remote_segment_members(self, app: Starlette, segment: str) -> set[str]:
        """A hub segment is a category of the HubSegments segmentation (the settings' default)."""
        return {p["attributes"]["emailAddress"] for p in _state(app).members("HubSegments", segment)}

    def remote_triggers(self, app: Starlette, email: str) -> list[dict[str, Any]]:
        """Transactional mails (parameters back to one value each) and interaction rows' scenario events."""
        state = _state(app)
        with state.lock:
            mails = [
                {"name": m["campaign"], "data": {k: v[0] if len(v) == 1 else v for k, v in m["parameters"].items()}}
                for m in state.mails
                if (m["attributes"].get("emailAddress") or "").lower() == email.lower()
            ]
            events = [
                {"name": f"table:{e['table']}", "data": json.loads(e["record"].get("data") or "{}")}
                for e in state.events
                if e["table"] == "CARTS" and (e["profile"] or "").lower() == email.lower()
            ]
        return mails + events

    def expire_tokens(self, app: Starlette) -> bool:
        _state(app).expire_tokens()
        return True

    def max_batch_seen(self, app: Starlette, kind: str) -> int | None:
        """The largest import of the kind's table (a one-by-one call carries one record)."""
        table = {"contact_upsert": "customers", "order": "ORDERS"}.get(kind)
        if table is None:
            return None
        state = _state(app)
        with state.lock:
            return max((job.total for job in state.imports.values() if job.table == table), default=1)
