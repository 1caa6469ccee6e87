"""The ``webhook`` source on its own: signatures (Shopify, WooCommerce, hex), topics to streams, bad bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub import ConnectorContext
from hub.app import Hub
from hub_plugins.webhook.settings import WebhookSettings
from hub_plugins.webhook.source import MalformedWebhook, WebhookSource

REPO = Path(__file__).resolve().parents[3]
SECRET = "shpss_test_secret"
BODY = json.dumps({"id": 1, "customer": {"email": "kari@example.no"}}).encode()


def _source(**settings: object) -> WebhookSource:
    values = {"secret": SECRET, "topics": {"orders/create": "orders", "carts/update": "carts"}, **settings}
    return WebhookSource(WebhookSettings.model_validate(values), ConnectorContext(name="shop", project_dir=Path()))


def _b64(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_shopify_signature_of_the_raw_body_verifies_whatever_the_header_case() -> None:
    source = _source()
    assert source.verify(BODY, {"X-Shopify-Hmac-Sha256": _b64(BODY)})
    assert source.verify(BODY, {"x-shopify-hmac-sha256": _b64(BODY)})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Shopify-Hmac-Sha256": ""},
        {"X-Shopify-Hmac-Sha256": _b64(BODY, "another secret")},
        {"X-Shopify-Hmac-Sha256": _b64(BODY + b" ")},  # signed another body: re-serialised JSON does not verify
        {"X-Shopify-Hmac-Sha256": "not base64 at all!"},
        {"X-Shopify-Hmac-Sha256": _hex(BODY)},  # right digest, wrong encoding
        {"X-WC-Webhook-Signature": _b64(BODY)},  # right signature, wrong header
    ],
)
def test_a_missing_wrong_or_garbled_signature_does_not_verify(headers: dict[str, str]) -> None:
    assert not _source().verify(BODY, headers)


def test_woocommerce_and_hex_signatures() -> None:
    woo = _source(signature_header="X-WC-Webhook-Signature", topic_header="X-WC-Webhook-Topic")
    assert woo.verify(BODY, {"X-WC-Webhook-Signature": _b64(BODY)})
    hexed = _source(signature_header="X-Hub-Signature-256", encoding="hex", signature_prefix="sha256=")
    assert hexed.verify(BODY, {"X-Hub-Signature-256": "sha256=" + _hex(BODY)})
    assert hexed.verify(BODY, {"X-Hub-Signature-256": "sha256=" + _hex(BODY).upper()})
    assert not hexed.verify(BODY, {"X-Hub-Signature-256": _hex(BODY)})  # the prefix is required


def test_the_topic_picks_the_stream_and_the_body_is_the_raw_record() -> None:
    source = _source()
    assert source.records(BODY, {"X-Shopify-Topic": "orders/create"}) == ("orders", [json.loads(BODY)])
    batch = json.dumps([{"id": 1}, {"id": 2}]).encode()
    assert source.records(batch, {"x-shopify-topic": "carts/update"}) == ("carts", [{"id": 1}, {"id": 2}])
    assert set(source.streams()) == {"orders", "carts"}


@pytest.mark.parametrize(
    ("body", "headers", "message", "stream"),
    [
        (b"{not json", {"X-Shopify-Topic": "orders/create"}, "body is not JSON", "orders"),
        (b"", {"X-Shopify-Topic": "orders/create"}, "empty body", "orders"),
        (b'"text"', {"X-Shopify-Topic": "orders/create"}, "not a string", "orders"),
        (b"[1, 2]", {"X-Shopify-Topic": "orders/create"}, "an array of non-objects", "orders"),
        (b"[]", {"X-Shopify-Topic": "orders/create"}, "an empty array", "orders"),
        (BODY, {}, "no X-Shopify-Topic header", None),
        (BODY, {"X-Shopify-Topic": "products/delete"}, "topic 'products/delete' is not configured", None),
    ],
)
def test_a_malformed_request_is_a_clear_value_error(
    body: bytes, headers: dict[str, str], message: str, stream: str | None
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        _source().records(body, headers)
    assert isinstance(raised.value, MalformedWebhook)
    assert raised.value.stream == stream


def test_read_yields_nothing_webhooks_are_push_only() -> None:
    assert list(_source().read("orders", None)) == []


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"secret": "  ", "topics": {"a": "b"}}, "the webhook secret is empty"),
        ({"secret": "s", "topics": {}}, "at least 1 item"),
        ({"secret": "s", "topics": {"a": "b"}, "encoding": "base32"}, "'base64' or 'hex'"),
        ({"topics": {"a": "b"}}, "Field required"),
    ],
)
def test_settings_refuse_what_would_accept_forgeries_or_route_nothing(settings: dict, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        WebhookSettings.model_validate(settings)


def test_the_plugin_is_registered_and_the_secret_comes_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text(
        "database: {url: 'sqlite:///hub.db'}\n"
        "connectors:\n"
        "  shop:\n"
        "    plugin: webhook\n"
        f"    mapping: {{orders: {REPO / 'mappings' / 'webshop_orders.yaml'}}}\n"
        "    settings:\n"
        "      secret: ${SHOP_SECRET}\n"
        "      topics: {orders/create: orders}\n",
        encoding="utf-8",
    )
    hub = Hub.load(tmp_path / "hub.yaml", project_dir=tmp_path, environ={"SHOP_SECRET": SECRET})
    try:
        source = hub.connector("shop")
        assert isinstance(source, WebhookSource)
        assert hub.sources() == ["shop"]
        assert SECRET in hub.secret_values()  # redacted from logs like any other secret
        assert source.verify(BODY, {"X-Shopify-Hmac-Sha256": _b64(BODY)})
    finally:
        hub.close()
