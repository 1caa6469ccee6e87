"""The Raptor emulator's in-memory account: every tracking event received, and the recommendations it derives.

Plain Python so tests can seed and read it in-process (``app.state.raptor``); :mod:`hub_plugins.raptor.emulator`
only turns requests into these calls. Recommendations come from a table set by hand (``set_recommendations``) or,
failing that, from co-purchase counts over the buy events received: "customers who bought X also bought Y".
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

DEFAULT_CUSTOMER_ID = "4711"
DEFAULT_API_KEY = "emulator-key"
#: How the emulated account reads positional parameters (Integrations > Live tracking); Raptor's common default.
DEFAULT_LIVE_TRACKING = {"event": "p1", "product": "p2", "order": "p21"}


class RaptorState:
    """One emulated Raptor installation: accounts (customer id -> API key), events, and a recommendation table.

    All mutation holds ``lock``: the server thread writes while a test thread reads.
    """

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        live_tracking: Mapping[str, str] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.accounts = dict(accounts or {DEFAULT_CUSTOMER_ID: DEFAULT_API_KEY})
        self.live_tracking = dict(live_tracking or DEFAULT_LIVE_TRACKING)
        self.reset()

    def reset(self) -> None:
        """Forget every event, request count and planted recommendation; keep accounts and the tracking map."""
        with self.lock:
            self.events: list[dict[str, Any]] = []
            self.table: dict[tuple[str, str], list[str]] = {}
            self.requests = 0
            self.recommendation_requests = 0

    # -- tracking -----------------------------------------------------------------------------------------------

    def track(self, customer_id: str, endpoint: str, params: Mapping[str, str]) -> None:
        """Record one tracking GET as received (Raptor answers every one the same way, so nothing is refused)."""
        with self.lock:
            self.events.append(
                {
                    "customer_id": customer_id,
                    "endpoint": endpoint,
                    "params": dict(params),
                    "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                }
            )

    def _field(self, event: Mapping[str, Any], name: str) -> str | None:
        value: str | None = event["params"].get(self.live_tracking[name])
        return value

    def buys(self, customer_id: str | None = None) -> list[dict[str, Any]]:
        """Buy events as ``{"order", "product", "ruid", "params"}``, oldest first."""
        with self.lock:
            events = list(self.events)
        return [
            {
                "order": self._field(e, "order"),
                "product": self._field(e, "product"),
                "ruid": e["params"].get("ruid"),
                "params": e["params"],
            }
            for e in events
            if self._field(e, "event") == "buy" and customer_id in (None, e["customer_id"])
        ]

    def buy_counts(self, customer_id: str | None = None) -> Counter[tuple[str | None, str | None]]:
        """How many buy events arrived per (order id, product id): a line sent twice shows as 2."""
        return Counter((b["order"], b["product"]) for b in self.buys(customer_id))

    # -- recommendations ----------------------------------------------------------------------------------------

    def set_recommendations(self, method: str, identifier: str, products: Iterable[str]) -> None:
        """Plant the answer of ``method`` for ``identifier`` (a product id or a user id)."""
        with self.lock:
            self.table[(method, identifier)] = list(products)

    def _baskets(self, customer_id: str) -> dict[str, set[str]]:
        """ruid -> the products that user bought."""
        baskets: dict[str, set[str]] = {}
        for buy in self.buys(customer_id):
            if buy["ruid"] and buy["product"]:
                baskets.setdefault(buy["ruid"], set()).add(buy["product"])
        return baskets

    def also_bought(self, customer_id: str, product: str) -> list[str]:
        """Products bought by the buyers of ``product``, most buyers first."""
        counts: Counter[str] = Counter()
        for products in self._baskets(customer_id).values():
            if product in products:
                counts.update(products - {product})
        return [p for p, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    def for_user(self, customer_id: str, user: str) -> list[str]:
        """What buyers of this user's products also bought, then bestsellers; never what the user owns."""
        baskets = self._baskets(customer_id)
        owned = baskets.get(user, set())
        counts: Counter[str] = Counter()
        for other, products in baskets.items():
            if other != user and products & owned:
                counts.update(products - owned)
        popular: Counter[str] = Counter(p for products in baskets.values() for p in products - owned)
        ranked = [p for p, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
        ranked += [p for p, _ in sorted(popular.items(), key=lambda item: (-item[1], item[0])) if p not in counts]
        return ranked

    def history(self, customer_id: str, user: str) -> list[dict[str, Any]]:
        """The user's events with a product, newest first, as ``GetUserIdHistory`` answers them."""
        with self.lock:
            events = [e for e in self.events if e["customer_id"] == customer_id and e["params"].get("ruid") == user]
        return [
            {"RecommendedId": self._field(e, "product"), "Priority": rank, "CreateDate": e["at"]}
            for rank, e in enumerate(reversed(events), 1)
            if self._field(e, "product")
        ]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "events": [dict(e) for e in self.events],
                "buys": len(self.buys()),
                "requests": self.requests,
                "recommendation_requests": self.recommendation_requests,
                "planted": len(self.table),
            }
