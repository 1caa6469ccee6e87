"""The ``webhook`` source: records a shop pushes to ``hub run`` (``POST /webhooks/<connector>``), one request each.

A request is trusted only if its signature header holds the HMAC-SHA256 of the *raw* body under the shared
secret (base64 for Shopify and WooCommerce, hex for others), compared in constant time. Its topic header picks
the stream (``topics: {orders/create: orders}``), and its body, one JSON object (or an array of objects), is the
stream's raw record: the same shape as a line of a JSON Lines export, so one mapping serves both.

The source is push-only: :meth:`WebhookSource.read` yields nothing, so ``hub sync`` and the daemon's schedule
leave it alone, and records arrive only through the daemon's HTTP endpoint (docs/daemon.md, "Webhooks").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from hub import Batch, CheckResult, ConnectorContext, Source, Stream
from hub_plugins.webhook.settings import WebhookSettings


class MalformedWebhook(ValueError):
    """A signed request whose topic or body cannot become records. ``stream`` is None when the topic is unknown."""

    def __init__(self, message: str, *, topic: str | None, stream: str | None) -> None:
        super().__init__(message)
        self.topic = topic
        self.stream = stream


class WebhookSource(Source):
    """Orders, carts, customers pushed by a shop as signed webhooks. See the module docstring."""

    type = "webhook"
    roles = ("source",)
    Settings = WebhookSettings
    description = "records pushed as signed webhooks (Shopify, WooCommerce) to `hub run`'s /webhooks/<connector>"

    settings: WebhookSettings

    def __init__(self, settings: WebhookSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._key = settings.secret.get_secret_value().encode("utf-8")
        self._signature_header = settings.signature_header.lower()
        self._topic_header = settings.topic_header.lower()
        self._topics = {topic.strip(): stream for topic, stream in settings.topics.items()}

    # ------------------------------------------------------------------------------------------ the contract

    def streams(self) -> dict[str, Stream]:
        by_stream: dict[str, list[str]] = {}
        for topic, stream in self._topics.items():
            by_stream.setdefault(stream, []).append(topic)
        return {
            stream: Stream(name=stream, description=f"pushed as webhooks: {', '.join(topics)}")
            for stream, topics in by_stream.items()
        }

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        """Nothing: webhooks are push-only and arrive through ``hub run``'s ``POST /webhooks/<connector>``."""
        return iter(())

    def check(self) -> CheckResult:
        topics = ", ".join(f"{topic} -> {stream}" for topic, stream in self._topics.items())
        return CheckResult(
            ok=True,
            message=(
                f"push-only: POST /webhooks/{self.name} on `hub run`; signature in {self.settings.signature_header}"
                f" ({self.settings.encoding} HMAC-SHA256), topic in {self.settings.topic_header}: {topics}"
            ),
        )

    # ------------------------------------------------------------------------------------------ the webhook side

    @property
    def max_body_bytes(self) -> int:
        return self.settings.max_body_bytes

    def verify(self, raw_body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether ``raw_body`` carries a valid signature. Constant-time; a missing or garbled header is False."""
        given = _header(headers, self._signature_header)
        if given is None:
            return False
        given = given.strip()
        prefix = self.settings.signature_prefix
        if prefix:
            if not given.startswith(prefix):
                return False
            given = given[len(prefix) :]
        try:
            if self.settings.encoding == "base64":
                signature = base64.b64decode(given.encode("ascii"), validate=True)
            else:
                signature = bytes.fromhex(given)
        except (ValueError, binascii.Error, UnicodeEncodeError):
            return False
        expected = hmac.new(self._key, raw_body, hashlib.sha256).digest()
        return hmac.compare_digest(signature, expected)

    def topic(self, headers: Mapping[str, str]) -> str | None:
        value = _header(headers, self._topic_header)
        return value.strip() if value is not None else None

    def stream_of(self, topic: str | None) -> str | None:
        return None if topic is None else self._topics.get(topic)

    def records(self, raw_body: bytes, headers: Mapping[str, str]) -> tuple[str, list[dict[str, Any]]]:
        """The stream and raw records of a verified request; :class:`MalformedWebhook` (a ValueError) if none.

        The body is one JSON object (Shopify, WooCommerce) or an array of objects; anything else is malformed.
        """
        topic = self.topic(headers)
        stream = self.stream_of(topic)
        if topic is None:
            raise MalformedWebhook(f"no {self.settings.topic_header} header", topic=None, stream=None)
        if stream is None:
            known = ", ".join(self._topics)
            raise MalformedWebhook(f"topic {topic!r} is not configured (topics: {known})", topic=topic, stream=None)
        if not raw_body.strip():
            raise MalformedWebhook("empty body", topic=topic, stream=stream)
        try:
            body = orjson.loads(raw_body)
        except orjson.JSONDecodeError as exc:
            raise MalformedWebhook(f"body is not JSON: {exc}", topic=topic, stream=stream) from None
        records = body if isinstance(body, list) else [body]
        if not records or not all(isinstance(record, dict) for record in records):
            raise MalformedWebhook(
                f"body must be a JSON object or an array of objects, not {_kind(body)}", topic=topic, stream=stream
            )
        return stream, records


def _header(headers: Mapping[str, str], lower_name: str) -> str | None:
    """A header by name, whatever its case (Starlette's headers are case-insensitive; a plain dict is not)."""
    value = headers.get(lower_name)
    if value is not None:
        return value
    for name, found in headers.items():
        if name.lower() == lower_name:
            return found
    return None


def _kind(body: Any) -> str:
    if isinstance(body, list):
        return "an empty array" if not body else "an array of non-objects"
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(body), "null")
