"""The Agillic plugin against hub's destination contract (``hub.testing.DestinationContract``), with 30% faults.

The contract's segment and trigger names (``tier_a``, ``welcome``, ``probe_1``) are made real in the emulator here:
segments are flag fields (``HUB_TIER_A``; the default instance accepts any UPPER_CASE field), and triggers are events
named in upper case, which this test's instance defines, achieved with their data as context.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from starlette.applications import Starlette

from hub.sandbox import Emulator
from hub.testing import DestinationContract
from hub_plugins.agillic import emulator, emulator_settings
from hub_plugins.agillic._instance import DEFAULT_EVENTS
from hub_plugins.agillic._state import AgillicState
from hub_plugins.agillic.destination import AgillicDestination
from hub_plugins.agillic.limits import MAX_BATCH, MAX_PAYLOAD_BYTES

#: The trigger names the contract fires, as events of this test's instance.
CONTRACT_EVENTS = {"WELCOME", "PROBE_1"}
AGILLIC = Emulator(
    name="agillic",
    connector_type="agillic",
    app=functools.partial(emulator.app, events=DEFAULT_EVENTS | CONTRACT_EVENTS),
    settings=emulator_settings,
)
#: Which emulator endpoint carries each kind's records (``largest_batch`` in the emulator's state).
BATCH_ENDPOINTS = {"contact_upsert": "recipients:batch", "order": "oneToManyTables:batchUpdateRecords"}


def _state(app: Starlette) -> AgillicState:
    return app.state.agillic  # type: ignore[no-any-return]


def _recipients(app: Starlette, email: str) -> list[dict[str, Any]]:
    state = _state(app)
    with state.lock:
        return [dict(r) for r in state.recipients.values() if str(r.get("EMAIL", "")).lower() == email.lower()]


class TestAgillicContract(DestinationContract):
    destination_type = AgillicDestination
    emulator: ClassVar[Emulator] = AGILLIC
    timezone = "Europe/Copenhagen"
    fault_rate = 0.3
    payload_limit = MAX_PAYLOAD_BYTES

    def settings(self, base_url: str) -> dict[str, Any]:
        return {**emulator_settings(base_url), "context_schema": "HUB_TRIGGER"}

    def contact_view(self, email: str, *, first_name: str, email_consent: bool | None) -> dict[str, Any]:
        """What mappings/agillic.yaml makes of a customer: UPPER_CASE Person Data, consent as a BOOLEAN field."""
        view: dict[str, Any] = {"EMAIL": email, "FIRSTNAME": first_name, "_hub": self.hub_keys(email)}
        if email_consent is not None:
            view["EMAIL_OPT_IN"] = email_consent
        return view

    def invalid_contact_view(self, email: str) -> dict[str, Any]:
        """A birth date not in the instance's date format (dd.MM.yyyy): Agillic refuses it with a 400."""
        return {**self.contact_view(email, first_name="Bad", email_consent=None), "BIRTHDATE": "1990/12/31"}

    def trigger_view(self, email: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"trigger_id": name.upper(), "data": data, "_hub": self.hub_keys(email)}

    def remote_contact(self, app: Starlette, email: str) -> dict[str, Any] | None:
        found = _recipients(app, email)
        if not found:
            return None
        consent = found[0].get("EMAIL_OPT_IN")
        return {
            "first_name": found[0].get("FIRSTNAME"),
            "email_consent": consent if consent is None else str(consent).lower() == "true",
        }

    def remote_contact_count(self, app: Starlette, email: str) -> int:
        return len(_recipients(app, email))

    def remote_order_lines(self, app: Starlette, order_no: str) -> int:
        state = _state(app)
        with state.lock:
            rows = [r for by_id in state.records["PURCHASES"].values() for r in by_id.values()]
        return sum(1 for row in rows if row.get("ORDER_ID") == order_no)

    def remote_segment_members(self, app: Starlette, segment: str) -> set[str]:
        field = f"HUB_{segment.upper()}"
        state = _state(app)
        with state.lock:
            return {rid for rid, data in state.recipients.items() if data.get(field) is True}

    def remote_triggers(self, app: Starlette, email: str) -> list[dict[str, Any]]:
        state = _state(app)
        with state.lock:
            achieved = [a for a in state.achievements if a["recipientId"].lower() == email.lower()]
        return [{"name": a["eventId"].lower(), "data": (a["context"] or {}).get("contextData")} for a in achieved]

    def expire_tokens(self, app: Starlette) -> bool:
        _state(app).expire_tokens()
        return True

    def max_batch_seen(self, app: Starlette, kind: str) -> int | None:
        endpoint = BATCH_ENDPOINTS.get(kind)
        return _state(app).largest_batch.get(endpoint) if endpoint else None

    def batch_limit(self, kind: str) -> int:
        """Orders go one per call, but a call carries an order's lines: up to Agillic's 1000 records."""
        return MAX_BATCH if kind == "order" else super().batch_limit(kind)
