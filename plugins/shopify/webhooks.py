"""Shopify webhooks for ``hub run``'s ``POST /webhooks/<connector>``: verified, deduplicated, normalised.

- **Verify**: ``X-Shopify-Hmac-Sha256`` (or the Events style ``shopify-hmac-sha256``) must be the base64
  HMAC-SHA256 of the raw body under ``webhook_secret``, compared in constant time. No secret: nothing verifies.
- **Route**: ``X-Shopify-Topic`` picks the stream (``topics``); the body, REST JSON, becomes the stream's raw
  record (:mod:`hub_plugins.shopify.normalise`), the same shape a sync reads, so one mapping serves both.
  ``refunds/create`` names only its order: the order is read whole (GraphQL ``node``) and loaded as the orders
  stream would, so the return lands with its customer. If Shopify cannot be reached the request fails (503) and
  Shopify sends it again.
- **Deduplicate**: a delivery whose ``X-Shopify-Webhook-Id`` (per delivery; a retry repeats it) or
  ``X-Shopify-Event-Id`` (per event and topic; several subscriptions share it) was already taken yields no record.
  A body whose record is *older* than one already taken for the same id (a stale retry, an out-of-order
  delivery) yields nothing either, so old data never overwrites new.

Both memories are bounded, in-process LRUs (``webhook_memory`` entries). That is enough because a duplicate that
gets through (after a restart, or past the bound) changes nothing: every load is an idempotent upsert keyed by
the record's Shopify id, so an order, a customer or a checkout is never counted twice. The memories only save work
and guard the rare stale retry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
import structlog

from hub_plugins.shopify.cursor import parse_time
from hub_plugins.shopify.normalise import REST_CONVERTERS, Raw, error_record, guarded
from hub_plugins.shopify.settings import ShopifySettings

log = structlog.get_logger("hub_plugins.shopify")

SIGNATURE_HEADERS = ("x-shopify-hmac-sha256", "shopify-hmac-sha256")
TOPIC_HEADERS = ("x-shopify-topic", "shopify-topic")
WEBHOOK_ID_HEADERS = ("x-shopify-webhook-id", "shopify-webhook-id")
EVENT_ID_HEADERS = ("x-shopify-event-id", "shopify-event-id")


class MalformedWebhook(ValueError):
    """A signed request whose topic or body cannot become records; ``stream`` files its reject."""

    def __init__(self, message: str, *, stream: str | None) -> None:
        super().__init__(message)
        self.stream = stream


class _Memory:
    """A bounded, thread-safe LRU of keys (and an optional value per key)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: Any, value: Any = True) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    lowered = None
    for name in names:
        value = headers.get(name)
        if value is None:
            if lowered is None:
                lowered = {k.lower(): v for k, v in headers.items()}
            value = lowered.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


class WebhookDesk:
    """The webhook side of one Shopify connector (see the module docstring)."""

    def __init__(self, settings: ShopifySettings, *, name: str, fetch_order: Callable[[str], Raw]) -> None:
        self.name = name
        secret = settings.webhook_secret
        self._key = secret.get_secret_value().encode("utf-8") if secret is not None else None
        self._topics = {topic.strip(): stream for topic, stream in settings.topics.items()}
        self._fetch_order = fetch_order
        self._deliveries = _Memory(settings.webhook_memory)
        self._versions = _Memory(settings.webhook_memory)

    def verify(self, raw_body: bytes, headers: Mapping[str, str]) -> bool:
        """Constant-time check of the body's signature; an empty body, a missing secret or header is False."""
        given = _header(headers, SIGNATURE_HEADERS)
        if self._key is None or given is None or not raw_body:
            return False
        try:
            signature = base64.b64decode(given.encode("ascii"), validate=True)
        except (ValueError, binascii.Error, UnicodeEncodeError):
            return False
        expected = hmac.new(self._key, raw_body, hashlib.sha256).digest()
        return hmac.compare_digest(signature, expected)

    def topic(self, headers: Mapping[str, str]) -> str | None:
        return _header(headers, TOPIC_HEADERS)

    def records(self, raw_body: bytes, headers: Mapping[str, str]) -> tuple[str, list[dict[str, Any]]]:
        """The stream and raw records of a verified delivery; none for a duplicate or a stale copy."""
        topic = self.topic(headers)
        if topic is None:
            raise MalformedWebhook("no X-Shopify-Topic header", stream=None)
        stream = self._topics.get(topic)
        if stream is None:
            raise MalformedWebhook(
                f"topic {topic!r} is not configured (topics: {', '.join(self._topics)})", stream=None
            )
        keys = self._delivery_keys(topic, headers)
        if any(self._deliveries.get(key) for key in keys):
            log.info("duplicate webhook ignored", connector=self.name, topic=topic)
            return stream, []
        try:
            body = orjson.loads(raw_body)
        except orjson.JSONDecodeError as exc:
            raise MalformedWebhook(f"body is not JSON: {exc}", stream=stream) from None
        if not isinstance(body, dict):
            raise MalformedWebhook("body is not a JSON object", stream=stream)
        record = self._record(topic, stream, body)
        fresh = [] if self._stale(stream, record) else [record]
        return stream, fresh

    def acknowledge(self, headers: Mapping[str, str]) -> None:
        """The delivery is committed: only now does its id count as seen (a failed write is redelivered)."""
        topic = self.topic(headers)
        if topic is not None:
            for key in self._delivery_keys(topic, headers):
                self._deliveries.put(key)

    def _record(self, topic: str, stream: str, body: Raw) -> Raw:
        if topic == "refunds/create":
            order_id = body.get("order_id")
            if order_id is None:
                return error_record(stream, body, ValueError("refund without order_id"))
            try:
                return self._fetch_order(str(order_id))
            except LookupError as exc:
                return error_record(stream, body, exc)
        convert = REST_CONVERTERS.get(stream)
        if convert is None:
            return error_record(stream, body, ValueError(f"stream {stream!r} takes no webhooks"))
        return guarded(stream, convert, body)

    def _delivery_keys(self, topic: str, headers: Mapping[str, str]) -> list[tuple[str, ...]]:
        keys: list[tuple[str, ...]] = []
        webhook_id = _header(headers, WEBHOOK_ID_HEADERS)
        if webhook_id:
            keys.append(("webhook", webhook_id))
        event_id = _header(headers, EVENT_ID_HEADERS)
        if event_id:
            keys.append(("event", topic, event_id))
        return keys

    def _stale(self, stream: str, record: Raw) -> bool:
        """Whether a newer version of this record already came by webhook; remembers this one if not."""
        if "_error" in record or record.get("id") is None:
            return False
        try:
            moment: datetime = parse_time(record["updated_at"])
        except (KeyError, TypeError, ValueError):
            return False
        key = (stream, str(record["id"]))
        seen = self._versions.get(key)
        if seen is not None and moment < seen:
            log.info("stale webhook ignored", connector=self.name, stream=stream, id=key[1])
            return True
        self._versions.put(key, moment)
        return False
