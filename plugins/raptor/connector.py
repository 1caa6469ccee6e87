"""The ``raptor`` connector: purchases streamed to Raptor as buy events, and Raptor's recommendations read back.

A buy event is a tracking GET that Raptor does not de-duplicate and cannot be asked about afterwards, and an
order is several of them (one per line). The outbox keeps one message per order and the core keeps no progress
between two sends of it, so this connector keeps one rule that makes every retry safe:

    **an order is answered ``retryable`` only while none of its lines may have reached Raptor.**

Until its first line lands, an order behaves like any message: a 5xx, a 429 or a refused connection changes
nothing, and the core retries it later (in this pass or another, in this process or another). Once one line got a
2xx or lost its answer, the order is under way: its remaining lines are each tried up to ``line_attempts`` times
right here, and the order ends ``sent`` (every line confirmed) or ``unknown`` (some line lost its answer, was
refused, or ran out of attempts), which the kind's ``at_most_once`` guarantee parks for review with each line's
fate. So a line that got a 2xx is never sent again, a line whose answer was lost is never re-sent, and only the
lines named in a parked order's reason can be missing. See the plugin README for the trade-offs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from hub.connectors import (
    CheckResult,
    ClientOptions,
    ConnectorContext,
    ConnectorSettings,
    Destination,
    KindSpec,
    Outgoing,
    Recommendation,
    RecommendationRequest,
    Recommender,
)
from hub.delivery.outcomes import InvalidMessage, Outcome
from hub_plugins.raptor.recommendations import RaptorRecommendations
from hub_plugins.raptor.settings import RaptorSettings
from hub_plugins.raptor.tracking import buy_events

#: The shortest wait between two attempts of a line of an order under way; it doubles up to line_backoff_max.
_FIRST_WAIT = 0.05


@dataclass(frozen=True, slots=True)
class _Fate:
    """What happened to one line: ``sent``, ``uncertain`` (may have landed), ``refused`` or ``unsent``."""

    line: Any
    state: str
    detail: str = ""

    def describe(self) -> str:
        return f"line {self.line} {self.state}" + (f" ({self.detail})" if self.detail else "")


class RaptorConnector(Destination, Recommender):
    """Raptor Smart Advisor: every channel's purchases as server-side buy events (one GET per order line), the
    nightly product feed it pulls, and its personal and product recommendations."""

    type = "raptor"
    roles = ("destination", "recommender")
    Settings = RaptorSettings
    description = "Raptor: buy events per order line, the product feed, recommendations"
    #: Raptor publishes no limit for server-side tracking; stay polite by default (delivery.rate_limit overrides).
    default_rate_limit: ClassVar[float] = 50.0
    kinds: ClassVar[Mapping[str, KindSpec]] = {
        "order": KindSpec(
            1,
            "at_most_once",
            "one non-idempotent tracking GET per line: a line that got a 2xx or lost its answer is never sent again",
        ),
    }
    settings: RaptorSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        assert isinstance(settings, RaptorSettings)
        super().__init__(settings, context)
        self.recommendations = RaptorRecommendations(settings)

    # -- configuration ------------------------------------------------------------------------------------------

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url=self.settings.tracking(), headers={"User-Agent": self.settings.user_agent})

    def check(self) -> CheckResult:
        """Reach the tracking host without sending an event; with an API key, ask for one recommendation."""
        url = self.settings.tracking()
        try:
            if self._http is not None:
                self.http.get("/")
            else:
                with httpx.Client(base_url=url, timeout=10) as client:
                    client.get("/")
        except httpx.TransportError as exc:
            return CheckResult(False, f"cannot reach {url} ({type(exc).__name__}); check tracking_url and the network")
        if self.settings.api_key is None:
            return CheckResult(
                True,
                f"Raptor tracking at {url} answers (tracking has no credentials: a wrong customer_id shows only as "
                "missing data in Raptor); no api_key, so recommendations are off",
            )
        answer = self.recommendations.probe()
        if answer is not None:
            return CheckResult(False, answer)
        return CheckResult(
            True, f"Raptor tracking at {url} answers, and account {self.settings.customer_id} gives recommendations"
        )

    # -- prepare ------------------------------------------------------------------------------------------------

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        if kind != "order":
            raise InvalidMessage(f"Raptor does not take {kind} messages")
        if not view.get("_hub"):
            raise InvalidMessage("the order has no customer; a Raptor buy event needs a ruid")
        return buy_events(view, self.settings)

    # -- send ---------------------------------------------------------------------------------------------------

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        if kind != "order":
            return [Outcome.invalid(f"Raptor does not take {kind} messages") for _ in batch]
        return [self._order(message.payload) for message in batch]

    def _order(self, payload: Mapping[str, Any]) -> Outcome:
        if payload.get("skip"):
            return Outcome.skipped(str(payload["skip"]))
        path = f"/{quote(self.settings.customer_id, safe='')}.stream"
        fates: list[_Fate] = []
        for line in payload["lines"]:
            params = self._params(payload, line)
            if not fates:
                first = self._first(path, params, line.get("line_no"))
                if isinstance(first, Outcome):
                    return first  # nothing of this order may have landed: the core may retry it whole
                fates.append(first)
            elif fates[-1].state == "unsent":
                # Raptor stopped answering: the rest would each spend their attempts in vain, holding a sender.
                fates.append(_Fate(line.get("line_no"), "unsent", "not tried: the line before ran out of attempts"))
            else:
                fates.append(self._under_way(path, params, line.get("line_no")))
        if all(fate.state == "sent" for fate in fates):
            return Outcome.sent(code=200)
        return Outcome.unknown(_summary(payload["order_id"], fates))

    def _params(self, payload: Mapping[str, Any], line: Mapping[str, Any]) -> dict[str, str]:
        """Positional parameters in number order, then ruid, then the static ones (Raptor's own examples' order)."""
        positional = sorted(line["params"].items(), key=lambda item: int(item[0][1:]))
        return {**dict(positional), "ruid": payload["ruid"], **self.settings.static_parameters}

    def _first(self, path: str, params: dict[str, str], line_no: Any) -> _Fate | Outcome:
        """The order's first line: a failure that changed nothing is the order's outcome; anything else a fate."""
        try:
            response = self.http.get(path, params=params)
        except httpx.TransportError as exc:
            outcome = Outcome.from_error(exc)
            if outcome.status == "unknown":
                return _Fate(line_no, "uncertain", outcome.body or "")
            return outcome
        outcome = Outcome.from_response(response)
        if outcome.status == "sent":
            return _Fate(line_no, "sent")
        if outcome.status == "unknown":
            return _Fate(line_no, "uncertain", f"HTTP {response.status_code}")
        return outcome

    def _under_way(self, path: str, params: dict[str, str], line_no: Any) -> _Fate:
        """A later line: tried here up to ``line_attempts`` times, since the order can no longer go back."""
        last, retry_after = "", None
        for attempt in range(self.settings.line_attempts):
            if attempt:
                time.sleep(self._wait(attempt, retry_after))
            retry_after = None
            try:
                response = self.http.get(path, params=params)
            except httpx.TransportError as exc:
                outcome = Outcome.from_error(exc)
                if outcome.status == "unknown":
                    return _Fate(line_no, "uncertain", outcome.body or "")
                last = outcome.body or type(exc).__name__
                continue
            outcome = Outcome.from_response(response)
            if outcome.status == "sent":
                return _Fate(line_no, "sent")
            if outcome.status == "unknown":
                return _Fate(line_no, "uncertain", f"HTTP {response.status_code}")
            if outcome.status != "retryable":
                return _Fate(line_no, "refused", f"HTTP {response.status_code}: {(outcome.body or '')[:200]}")
            last, retry_after = f"HTTP {response.status_code}", outcome.retry_after
        return _Fate(line_no, "unsent", f"{self.settings.line_attempts} attempts, last {last}")

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        cap = self.settings.line_backoff_max
        backoff = random.uniform(0.5, 1.0) * min(cap, _FIRST_WAIT * 2 ** (attempt - 1))
        return min(cap, max(backoff, retry_after or 0.0))

    # -- recommend ----------------------------------------------------------------------------------------------

    def recommend(self, request: RecommendationRequest, *, timeout: float) -> list[Recommendation]:
        """Raptor's suggestions for the request's products (then its customer), cached; raises
        :class:`~hub_plugins.raptor.recommendations.RaptorUnavailable` at once while Raptor is failing."""
        return self.recommendations.recommend(request, timeout=timeout)


def _summary(order_id: str, fates: list[_Fate]) -> str:
    """A parked order's reason: which lines Raptor has, which it may have, and which it lacks."""
    sent = [str(f.line) for f in fates if f.state == "sent"]
    others = "; ".join(f.describe() for f in fates if f.state != "sent")
    return (
        f"order {order_id}: {len(sent)} of {len(fates)} lines confirmed ({', '.join(sent) or 'none'}); {others}. "
        "Lines are sent at most once: nothing here is re-sent; a replay would send every line again"
    )
