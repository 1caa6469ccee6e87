"""A trigger's payload reaches Voyado as the flat object of scalars Engage custom triggers take."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub.connectors import Outgoing
from hub_plugins.voyado._state import VoyadoState
from hub_plugins.voyado.destination import VoyadoDestination, flatten_trigger_data

KEYS = {"customer_id": 12, "email": "ann@example.com", "phone": None, "member_no": None, "external_ids": {}}
PAYLOAD: dict[str, Any] = {
    "trigger": "pp_grill",
    "message_type": "post_purchase",
    "branch": "no_accessory",
    "variant": None,
    "customer": {"id": 12, "first_name": "Ann", "tier": "A", "orders_lifetime": 3},
    "order": {
        "id": 5,
        "total": 4990.0,
        "placed_at": "2025-03-01T12:00:00+00:00",
        "lines": [
            {"sku": "G1", "name": "Grill", "quantity": 1.0, "unit_price": 4990.0},
            {"sku": "G2", "name": "Tongs", "quantity": 2.0, "unit_price": None},
        ],
    },
    "accessories": [{"sku": "A1", "name": "Cover", "price": 499.0}, {"sku": "A2", "name": "Brush", "price": 99.0}],
    "product_groups": ["grills", "garden"],
}


def test_nested_objects_become_camel_case_keys() -> None:
    flat = flatten_trigger_data(PAYLOAD)
    assert flat["customerFirstName"] == "Ann"
    assert flat["customerTier"] == "A"
    assert flat["orderTotal"] == 4990.0
    assert flat["messageType"] == "post_purchase"


def test_lists_of_objects_become_numbered_keys_with_a_count() -> None:
    flat = flatten_trigger_data(PAYLOAD)
    assert (flat["accessory1Sku"], flat["accessory1Name"], flat["accessory2Price"]) == ("A1", "Cover", 99.0)
    assert flat["accessoryCount"] == 2
    assert (flat["orderLine1Sku"], flat["orderLine2Quantity"], flat["orderLineCount"]) == ("G1", 2.0, 2)


def test_lists_of_scalars_are_comma_joined_and_nulls_left_out() -> None:
    flat = flatten_trigger_data(PAYLOAD)
    assert flat["productGroups"] == "grills,garden"
    assert "variant" not in flat
    assert "orderLine2UnitPrice" not in flat


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), inner),
    max_leaves=20,
)


@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True), json_values, max_size=5))
def test_any_payload_flattens_to_scalars(data: dict[str, Any]) -> None:
    flat = flatten_trigger_data(data)
    assert all(isinstance(value, str | int | float | bool) for value in flat.values())


def test_prepare_flattens_the_trigger_data(destination: VoyadoDestination) -> None:
    prepared = destination.prepare("trigger", {"trigger_id": "pp", "data": PAYLOAD, "_hub": KEYS})
    assert prepared["trigger_id"] == "pp"
    assert prepared["data"] == flatten_trigger_data(PAYLOAD)
    assert prepared["match"] == {"key": "email", "value": "ann@example.com"}


def test_engage_receives_the_flat_body(destination: VoyadoDestination, state: VoyadoState) -> None:
    state.create_contact({"email": "ann@example.com"})
    payload = destination.prepare("trigger", {"trigger_id": "pp", "data": PAYLOAD, "_hub": KEYS})
    (outcome,) = destination.send(
        "trigger", [Outgoing(id=1, kind="trigger", customer_id=12, payload=payload, idempotency_key="k")]
    )
    assert outcome.status == "sent"
    assert state.triggers[0]["data"]["accessory1Sku"] == "A1"
    assert all(not isinstance(value, dict | list) for value in state.triggers[0]["data"].values())
