"""The Raptor plugin against hub's destination contract (``hub.testing.DestinationContract``).

Raptor takes only purchases (``order``, as buy events): the contact, consent, segment, trigger, validation and
token checks skip with the reason. What the contract does cover: settings, ``check()``, an order arriving with its
lines, 429 and 5xx changing nothing, a lost answer following the kind's at-most-once guarantee, batch sizes, and
the pipeline through the outbox and dispatcher with 30% faults (each order sent, or parked for review).
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.applications import Starlette

from hub.sandbox import Emulator, Faults
from hub.testing import DestinationContract
from hub_plugins.raptor import hub_emulators
from hub_plugins.raptor.connector import RaptorConnector

(RAPTOR,) = hub_emulators()


class TestRaptorContract(DestinationContract):
    destination_type = RaptorConnector
    emulator: ClassVar[Emulator] = RAPTOR
    #: The plugin's polite default (50 requests/s) would make the pipeline test wait for its own limit.
    delivery: ClassVar[dict[str, Any]] = {"rate_limit": 1000}

    def settings(self, base_url: str) -> dict[str, Any]:
        return {**RAPTOR.settings(base_url), "line_backoff_max": 0.05}

    def contact_view(self, email: str, *, first_name: str, email_consent: bool | None) -> dict[str, Any]:
        raise AssertionError("Raptor takes no contacts: the contract must not ask for one")

    def remote_contact(self, app: Starlette, email: str) -> dict[str, Any] | None:
        return None

    def remote_order_lines(self, app: Starlette, order_no: str) -> int:
        """Buy events carrying the order's number (p21): a line sent twice counts twice."""
        return sum(1 for buy in app.state.raptor.buys() if buy["order"] == order_no)

    def lost_response_faults(self, kind: str) -> Faults:
        """The request with the effect is the tracking GET: lose every answer to it."""
        return Faults(drop_rate=1.0, methods=["GET"], paths=["/*.stream"])
