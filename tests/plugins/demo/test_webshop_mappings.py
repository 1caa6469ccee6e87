"""The shipped web shop mappings for carts, events and the order's campaign, on hand-written records."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.errors import RecordError
from hub.mapping import CompiledMapping, load_mapping
from hub_plugins.standard.transforms import TRANSFORMS

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


def shipped(name: str) -> CompiledMapping:
    return load_mapping(MAPPINGS / f"{name}.yaml", TRANSFORMS, timezone="Europe/Oslo")


def cart(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": 27000000000001,
        "created_at": "2024-12-30T20:01:00+01:00",
        "updated_at": "2024-12-30T20:15:00+01:00",
        "completed_at": None,
        "status": "open",
        "order_id": None,
        "currency": "NOK",
        "total_price": "1307.00",
        "customer": {"id": 6100706848792, "email": "Lars.Antonsen@outlook.com"},
        "line_items": [
            {"sku": "GRD-00065", "title": "Hekksaks", "quantity": 1, "price": "909.00"},
            {"sku": "GRD-00320", "title": "Plengjødsel", "quantity": 2, "price": "199.00"},
        ],
    }
    record.update(changes)
    return record


def order(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": 5500000008331,
        "created_at": "2024-11-29T07:12:08+01:00",
        "updated_at": "2024-11-29T07:12:08+01:00",
        "currency": "NOK",
        "total_price": "1139.00",
        "current_total_price": "1139.00",
        "financial_status": "paid",
        "customer": {"id": 6100597248680, "email": "kari@example.no", "phone": None},
        "line_items": [{"id": 1, "sku": "GRL-00001", "quantity": 1, "price": "1139.00", "total_discount": "0.00"}],
    }
    record.update(changes)
    return record


def test_a_cart_maps_to_the_cart_entity_of_the_shop_customer() -> None:
    mapped = shipped("webshop_carts").map(cart())
    assert mapped.customer == {"external_id": "6100706848792", "email": "lars.antonsen@outlook.com"}
    (row,) = mapped.rows["cart"]
    assert row["external_id"] == "27000000000001" and row["status"] == "open"
    assert row["updated_at"] == datetime(2024, 12, 30, 19, 15, tzinfo=UTC)
    assert row["total"] == Decimal("1307.00") and row["currency"] == "NOK"
    assert [(i["sku"], i["quantity"]) for i in row["items_json"]] == [("GRD-00065", 1), ("GRD-00320", 2)]


def test_a_guest_cart_is_attached_by_its_email_alone() -> None:
    mapped = shipped("webshop_carts").map(cart(customer={"id": None, "email": "kari@example.no"}))
    assert mapped.customer == {"external_id": None, "email": "kari@example.no"}


@pytest.mark.parametrize(
    "changes",
    [{"customer": {"id": None, "email": "kari@@example.no"}}, {"updated_at": "2024-13-30T20:15:00+01:00"}],
    ids=["bad_email", "bad_date"],
)
def test_a_malformed_cart_is_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(RecordError):
        shipped("webshop_carts").map(cart(**changes))


def test_a_points_event_keeps_its_payload() -> None:
    raw = {
        "id": "ev_000000010169",
        "type": "points_expiring",
        "occurred_at": "2024-12-31T05:58:00+01:00",
        "email": "Hakon.Haugen@gmail.com",
        "payload": {"points": 820, "expires_on": "2025-01-07"},
    }
    mapped = shipped("webshop_events").map(raw)
    assert mapped.customer == {"email": "hakon.haugen@gmail.com"}
    assert mapped.rows["event"] == [
        {
            "external_id": "ev_000000010169",
            "type": "points_expiring",
            "at": datetime(2024, 12, 31, 4, 58, tzinfo=UTC),
            "payload_json": {"points": 820, "expires_on": "2025-01-07"},
        }
    ]


def test_an_event_without_a_valid_email_is_rejected() -> None:
    raw = {"id": "ev_1", "type": "email_bounced", "occurred_at": "2024-05-01T10:00:00+02:00", "email": "x@@y.no"}
    with pytest.raises(RecordError):
        shipped("webshop_events").map(raw)


@pytest.mark.parametrize(
    ("extra", "campaign"),
    [
        ({"discount_codes": [{"code": "BLACKFRIDAY24", "amount": "0.00", "type": "percentage"}]}, "BLACKFRIDAY24"),
        ({"note_attributes": [{"name": "utm_campaign", "value": "nyhetsbrev-2024-uke47"}]}, "nyhetsbrev-2024-uke47"),
        (
            {
                "discount_codes": [{"code": "JUL24", "amount": "0.00", "type": "percentage"}],
                "note_attributes": [{"name": "utm_campaign", "value": "nyhetsbrev-2024-uke50"}],
            },
            "JUL24",
        ),
        ({}, None),
        ({"discount_codes": []}, None),
    ],
    ids=["code", "utm", "code_wins", "none", "empty_codes"],
)
def test_the_order_campaign_is_the_discount_code_else_the_utm_campaign(
    extra: dict[str, Any], campaign: str | None
) -> None:
    (row,) = shipped("webshop_orders").map(order(**extra)).rows["order"]
    assert row["campaign"] == campaign
