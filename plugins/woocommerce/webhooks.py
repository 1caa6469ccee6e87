"""WooCommerce webhooks for ``hub run``'s ``POST /webhooks/<connector>``: verified, routed, never refused for data.

- **Verify**: ``X-WC-Webhook-Signature`` must be the base64 HMAC-SHA256 of the raw body under the webhook's
  secret (``webhook_secret``), compared in constant time. No secret configured: nothing verifies.
- **Ping**: when a webhook is created (or activated) WooCommerce posts the form body ``webhook_id=<N>``, with no
  signature and no topic, and keeps the webhook "pending" unless the answer is exactly 200. The ping carries no
  data, so :meth:`WebhookDesk.handshake` recognises it (for a daemon that answers handshakes before verifying)
  and :meth:`WebhookDesk.verify` lets it through (for one that does not: it then loads nothing and is answered
  2xx; the plugin README says what the daemon must do for the 200).
- **Never refused for data**: WooCommerce counts any answer outside 200-302 as a failure, disables the webhook
  after more than five in a row and never sends a delivery again. So a signed delivery hub cannot use is still
  taken: a body that is not a record becomes an error record (a reject, kept with its payload), a topic hub does
  not take (``coupon.updated``, ``action.*``) yields nothing. Only a bad signature is refused (401), as it must be.
- **Route**: ``X-WC-Webhook-Topic`` picks the stream (``topics``). The body is the REST GET of the resource, the
  shape a read yields (:mod:`hub_plugins.woocommerce.records`), so one mapping serves both; ``*.deleted`` bodies
  are ``{"id": N}`` and become tombstones.
- **Stale copies**: deliveries run in the background and may arrive out of order; a body whose
  ``date_modified_gmt`` is older than one already taken for the same record yields nothing. The memory is a
  bounded LRU (``webhook_memory``); a duplicate that gets past it changes nothing, since every load is an upsert
  keyed by the record's id. ``X-WC-Webhook-Delivery-ID`` is not used: it is a hash of the webhook id and the
  second, so two deliveries in one second share it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
import structlog

from hub_plugins.woocommerce.records import check, error_record, normalise, parse_gmt
from hub_plugins.woocommerce.settings import WooCommerceSettings

log = structlog.get_logger("hub_plugins.woocommerce")

SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"
_PING = re.compile(rb"webhook_id=(\d+)")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if value is not None and value.strip() else None


class _Versions:
    """A bounded, thread-safe LRU of the last change time taken per record."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], datetime] = OrderedDict()
        self._lock = threading.Lock()

    def stale(self, key: tuple[str, int], moment: datetime) -> bool:
        """Whether ``moment`` is older than the version taken before; remembers it if not."""
        if self.size == 0:
            return False
        with self._lock:
            seen = self._items.get(key)
            if seen is not None and moment < seen:
                return True
            self._items[key] = moment
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return False

    def forget(self, key: tuple[str, int]) -> None:
        with self._lock:
            self._items.pop(key, None)


class WebhookDesk:
    """The webhook side of one WooCommerce connector (see the module docstring)."""

    def __init__(self, settings: WooCommerceSettings, *, name: str) -> None:
        self.name = name
        secret = settings.webhook_secret
        self._key = secret.get_secret_value().encode("utf-8") if secret is not None else None
        self._topics = {topic.strip(): stream for topic, stream in settings.topics.items()}
        self._default_stream = settings.streams[0]
        self._versions = _Versions(settings.webhook_memory)

    def handshake(self, raw_body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """The answer body (to be sent with status 200) for WooCommerce's activation ping; None for anything else."""
        if _header(headers, SIGNATURE_HEADER) is not None or _header(headers, TOPIC_HEADER) is not None:
            return None
        match = _PING.fullmatch(raw_body.strip())
        return {"status": "ok", "webhook_id": int(match.group(1))} if match else None

    def verify(self, raw_body: bytes, headers: Mapping[str, str]) -> bool:
        """Constant-time check of the signature; the unsigned activation ping passes (it carries no data)."""
        if self.handshake(raw_body, headers) is not None:
            return True
        given = _header(headers, SIGNATURE_HEADER)
        if self._key is None or given is None:
            return False
        try:
            signature = base64.b64decode(given.encode("ascii"), validate=True)
        except (ValueError, binascii.Error, UnicodeEncodeError):
            return False
        expected = hmac.new(self._key, raw_body, hashlib.sha256).digest()
        return hmac.compare_digest(signature, expected)

    def topic(self, headers: Mapping[str, str]) -> str | None:
        return _header(headers, TOPIC_HEADER)

    def records(self, raw_body: bytes, headers: Mapping[str, str]) -> tuple[str, list[dict[str, Any]]]:
        """The stream and raw records of a verified delivery; never raises (see the module docstring)."""
        if self.handshake(raw_body, headers) is not None:
            log.info("webhook ping answered", connector=self.name)
            return self._default_stream, []
        topic = self.topic(headers)
        stream = self._topics.get(topic or "")
        text = raw_body.decode("utf-8", errors="replace")
        if topic is None:
            return self._default_stream, [error_record(text, "a signed delivery without X-WC-Webhook-Topic")]
        if stream is None:
            log.info("webhook topic not taken", connector=self.name, topic=topic)
            return self._default_stream, []
        try:
            body = orjson.loads(raw_body)
        except orjson.JSONDecodeError:
            return stream, [error_record(text, f"{topic}: the body is not JSON")]
        if topic.endswith(".deleted"):
            return stream, self._deleted(stream, topic, body, text)
        why = check(body)
        if why is not None:
            return stream, [error_record(body if isinstance(body, dict) else text, f"{topic}: {why}")]
        moment = parse_gmt(body.get("date_modified_gmt"))
        if moment is not None and self._versions.stale((stream, body["id"]), moment):
            log.info("stale webhook ignored", connector=self.name, topic=topic, id=body["id"])
            return stream, []
        return stream, [normalise(body)]

    def _deleted(self, stream: str, topic: str, body: Any, text: str) -> list[dict[str, Any]]:
        ident = body.get("id") if isinstance(body, dict) else None
        if not isinstance(ident, int) or isinstance(ident, bool):
            return [error_record(body if isinstance(body, dict) else text, f"{topic}: no id of the deleted record")]
        self._versions.forget((stream, ident))
        return [{**body, "_deleted": True}]
