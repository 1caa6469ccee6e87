"""The emulator's webhook sender: signed deliveries with Shopify's headers, retried on failure, logged.

A delivery is a POST of the REST JSON with ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the body under the
subscription's secret), ``X-Shopify-Topic``, ``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``,
``X-Shopify-Webhook-Id`` (one per delivery; retries repeat it), ``X-Shopify-Event-Id`` (one per event) and
``X-Shopify-Triggered-At``. A 2xx within ``timeout`` seconds is success; anything else is retried after each of
``retry_delays`` in turn (Shopify: 8 retries over 4 hours; the emulator's default is seconds), then given up.
Deliveries run on one background thread in due order, so a failing endpoint never holds up the others.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

DEFAULT_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


@dataclass(slots=True)
class Subscription:
    url: str
    secret: str
    topics: frozenset[str] | None  # None: every topic
    api_version: str = "2025-07"


@dataclass(slots=True)
class Delivery:
    id: str
    event_id: str
    topic: str
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: list[int | str] = field(default_factory=list)
    delivered: bool = False
    given_up: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "topic": self.topic,
            "url": self.url,
            "attempts": list(self.attempts),
            "delivered": self.delivered,
            "given_up": self.given_up,
            "body": orjson.loads(self.body),
        }


class WebhookSender:
    """Subscriptions, the delivery log and the thread that sends (started on the first delivery)."""

    def __init__(self, shop_domain: str, *, retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS) -> None:
        self.shop_domain = shop_domain
        self.retry_delays = retry_delays
        self.timeout = 5.0
        self.subscriptions: list[Subscription] = []
        self.deliveries: dict[str, Delivery] = {}
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def subscribe(self, subscription: Subscription) -> None:
        with self._wake:
            self.subscriptions.append(subscription)

    def emit(self, topic: str, payload: dict[str, Any]) -> list[str]:
        """Queue one delivery of ``payload`` per subscription to ``topic``; returns their ids."""
        body = orjson.dumps(payload)
        event_id = str(uuid.uuid4())
        ids = []
        with self._wake:
            for sub in self.subscriptions:
                if sub.topics is not None and topic not in sub.topics:
                    continue
                delivery_id = str(uuid.uuid4())
                signature = base64.b64encode(hmac.new(sub.secret.encode(), body, hashlib.sha256).digest()).decode()
                headers = {
                    "Content-Type": "application/json",
                    "X-Shopify-Hmac-Sha256": signature,
                    "X-Shopify-Topic": topic,
                    "X-Shopify-Shop-Domain": self.shop_domain,
                    "X-Shopify-API-Version": sub.api_version,
                    "X-Shopify-Webhook-Id": delivery_id,
                    "X-Shopify-Event-Id": event_id,
                    "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
                }
                self.deliveries[delivery_id] = Delivery(delivery_id, event_id, topic, sub.url, body, headers)
                self._schedule(delivery_id, 0.0)
                ids.append(delivery_id)
        return ids

    def resend(self, delivery_id: str) -> bool:
        """Send a past delivery again, byte for byte (a duplicate, or a stale retry once the record moved on)."""
        with self._wake:
            delivery = self.deliveries.get(delivery_id)
            if delivery is None:
                return False
            delivery.delivered = delivery.given_up = False
            self._schedule(delivery_id, 0.0)
            return True

    def idle(self) -> bool:
        """True when nothing is queued (tests wait for it)."""
        with self._wake:
            return not self._due

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()

    def _schedule(self, delivery_id: str, delay: float) -> None:
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), delivery_id))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shopify-emulator-webhooks", daemon=True)
            self._thread.start()
        self._wake.notify_all()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                with self._wake:
                    while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                        wait = self._due[0][0] - time.monotonic() if self._due else None
                        self._wake.wait(wait)
                    if self._stopped:
                        return
                    _, _, delivery_id = heapq.heappop(self._due)
                    delivery = self.deliveries[delivery_id]
                outcome = self._send(client, delivery)
                with self._wake:
                    delivery.attempts.append(outcome)
                    if isinstance(outcome, int) and 200 <= outcome < 300:
                        delivery.delivered = True
                    elif len(delivery.attempts) <= len(self.retry_delays):
                        self._schedule(delivery_id, self.retry_delays[len(delivery.attempts) - 1])
                    else:
                        delivery.given_up = True

    @staticmethod
    def _send(client: httpx.Client, delivery: Delivery) -> int | str:
        try:
            return client.post(delivery.url, content=delivery.body, headers=delivery.headers).status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__
