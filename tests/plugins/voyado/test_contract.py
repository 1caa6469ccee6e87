"""The Voyado plugin against hub's destination contract (``hub.testing.DestinationContract``).

Voyado Engage has no segments API in this plugin (no ``segment_membership`` kind) and authenticates with a static
API key (no tokens): those checks skip with the reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.applications import Starlette

from hub.sandbox import Emulator
from hub.testing import DestinationContract
from hub_plugins.voyado import hub_emulators
from hub_plugins.voyado._state import VoyadoState
from hub_plugins.voyado.destination import VoyadoDestination

(VOYADO,) = hub_emulators()


def _state(app: Starlette) -> VoyadoState:
    return app.state.voyado  # type: ignore[no-any-return]


def _contacts(app: Starlette, email: str) -> list[dict[str, Any]]:
    state = _state(app)
    with state.lock:
        return [c for c in state.contacts.values() if (c["attributes"].get("email") or "").lower() == email.lower()]


class TestVoyadoContract(DestinationContract):
    destination_type = VoyadoDestination
    emulator: ClassVar[Emulator] = VOYADO
    timezone = "Europe/Stockholm"
    #: The plugin's default (Engage's 50 requests/s per key) would make the pipeline test wait for its own limit.
    delivery: ClassVar[dict[str, Any]] = {"rate_limit": 1000}

    def contact_view(self, email: str, *, first_name: str, email_consent: bool | None) -> dict[str, Any]:
        """What mappings/voyado.yaml makes of a customer: camelCase attributes, consent as a preference."""
        view: dict[str, Any] = {"firstName": first_name, "email": email, "_hub": self.hub_keys(email)}
        if email_consent is not None:
            view["preferences"] = {"acceptsEmail": email_consent}
        return view

    def invalid_contact_view(self, email: str) -> dict[str, Any]:
        """The mapping passes phone numbers on as they are; Engage refuses one it cannot read (400)."""
        return {**self.contact_view(email, first_name="Bad", email_consent=None), "mobilePhone": "+47 12"}

    def remote_contact(self, app: Starlette, email: str) -> dict[str, Any] | None:
        found = _contacts(app, email)
        if not found:
            return None
        contact = found[0]
        return {
            "first_name": contact["attributes"].get("firstName"),
            "email_consent": contact["preferences"].get("acceptsEmail"),
            "id": contact["id"],
        }

    def remote_contact_count(self, app: Starlette, email: str) -> int:
        return len(_contacts(app, email))

    def remote_order_lines(self, app: Starlette, order_no: str) -> int:
        """Receipts are keyed ``<source>:<external_id>``; a repeat is ignored, so lines never double."""
        state = _state(app)
        with state.lock:
            receipts = [r for r in state.receipts.values() if r["uniqueReceiptId"].endswith(f":{order_no}")]
        return sum(1 for r in receipts for item in r["items"] if item["type"] in ("PURCHASE", "RETURN"))

    def remote_triggers(self, app: Starlette, email: str) -> list[dict[str, Any]]:
        ids = {c["id"] for c in _contacts(app, email)}
        state = _state(app)
        with state.lock:
            return [{"name": t["triggerId"], "data": t["data"]} for t in state.triggers if t["contactId"] in ids]
