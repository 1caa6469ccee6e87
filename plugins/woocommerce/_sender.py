"""The emulated shop's webhooks: WooCommerce's delivery, signature, ping and failure counting.

A delivery is a POST of the resource's REST JSON (PHP's ``json_encode``: ``/`` escaped as ``\\/``, non-ASCII as
``\\uXXXX``) with the ``X-WC-Webhook-*`` headers, ``X-WC-Webhook-Signature`` being the base64 HMAC-SHA256 of that
exact body under the webhook's secret. Deliveries run on a background thread, in order, without redirects. An
answer from 200 to 302 resets the webhook's failure count; anything else (or no answer) counts a failure, and a
failure when the count is already above 5 disables the webhook for good. Nothing is ever delivered again.

Creating an active webhook sends the ping first: the form body ``webhook_id=<id>``, unsigned; only a 200 clears
the webhook's ``pending_delivery``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

MAX_FAILURES = 5  # woocommerce_max_webhook_delivery_failures
USER_AGENT = "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"


@dataclass(slots=True)
class Webhook:
    id: int
    name: str
    topic: str
    delivery_url: str
    secret: str
    status: str = "active"  # active, paused, disabled
    failure_count: int = 0
    pending_delivery: bool = True

    def public(self) -> dict[str, Any]:
        """The webhook as the emulator shows it, without its secret."""
        body = asdict(self)
        del body["secret"]
        body["resource"], _, body["event"] = self.topic.partition(".")
        return body


@dataclass(slots=True)
class Delivery:
    webhook_id: int
    topic: str
    status: int | None  # None: no answer (connection refused, timeout)
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def php_json(payload: Any) -> bytes:
    """``json_encode`` as WordPress sends it: compact, ASCII-only, slashes escaped."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode("ascii")


def signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


class Sender:
    """The shop's webhooks and their background deliveries; :meth:`wait` lets a test see them done."""

    def __init__(self, *, home_url: str = "http://shop.example.no/", timeout: float = 10.0) -> None:
        self.home_url = home_url
        self.timeout = timeout
        self.webhooks: dict[int, Webhook] = {}
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._queue: queue.Queue[tuple[Webhook, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def create(self, *, name: str, topic: str, delivery_url: str, secret: str, status: str = "active") -> Webhook:
        """A new webhook; an active one is pinged at once (synchronously, as the admin screen does)."""
        with self.lock:
            webhook = Webhook(next(self._ids), name, topic, delivery_url, secret, status)
            self.webhooks[webhook.id] = webhook
        if status == "active":
            self.ping(webhook)
        return webhook

    def ping(self, webhook: Webhook) -> int | None:
        """WooCommerce's ``deliver_ping``: the unsigned form body ``webhook_id=N``; only 200 counts."""
        body = f"webhook_id={webhook.id}"
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        status = self._post(webhook.delivery_url, body.encode(), headers)
        with self.lock:
            self.deliveries.append(Delivery(webhook.id, "ping", status, headers, body))
            if status == 200:
                webhook.pending_delivery = False
        return status

    def emit(self, topic: str, payload: Any) -> None:
        """Queue a delivery of ``payload`` to every active webhook of ``topic``."""
        with self.lock:
            targets = [w for w in self.webhooks.values() if w.topic == topic and w.status == "active"]
        for webhook in targets:
            self._start()
            self._queue.put((webhook, payload))

    def wait(self, timeout: float = 5.0) -> None:
        """Block until every queued delivery was sent and answered (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _start(self) -> None:
        with self.lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="woocommerce-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._deliver(*job)
            finally:
                self._queue.task_done()

    def _deliver(self, webhook: Webhook, payload: Any) -> None:
        body = php_json(payload)
        resource, _, event = webhook.topic.partition(".")
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": self.home_url,
            "X-WC-Webhook-Topic": webhook.topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": signature(body, webhook.secret),
            "X-WC-Webhook-ID": str(webhook.id),
            "X-WC-Webhook-Delivery-ID": hashlib.md5(f"{webhook.id}{int(time.time())}".encode()).hexdigest(),
        }
        status = self._post(webhook.delivery_url, body, headers)
        with self.lock:
            self.deliveries.append(Delivery(webhook.id, webhook.topic, status, headers, body.decode("ascii")))
            if status is not None and 200 <= status < 303:
                webhook.failure_count = 0
            elif webhook.failure_count > MAX_FAILURES:
                webhook.status = "disabled"
            else:
                webhook.failure_count += 1

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int | None:
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                return client.post(url, content=body, headers=headers).status_code
        except httpx.HTTPError:
            return None
