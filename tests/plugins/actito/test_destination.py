"""The actito destination one message at a time, against the emulator over real loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hub.delivery.outcomes import InvalidMessage
from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.server import serve
from hub_plugins.actito import emulator
from hub_plugins.actito._state import ActitoState
from hub_plugins.actito.auth import expires_in
from hub_plugins.actito.destination import ActitoDestination
from hub_plugins.actito.records import mail_parameters
from tests.plugins.actito._support import contact, keys, send

ORDER = {
    "order": {
        "id": 5,
        "source": "webshop",
        "external_id": "W-1",
        "placed_at": "2026-03-01T09:14:00+00:00",
        "channel": "web",
        "store_external_id": None,
        "currency": "EUR",
        "total": "30.00",
        "status": "completed",
        "is_return": False,
    },
    "lines": [
        {"line_no": 1, "sku": "A", "quantity": "1", "unit_price": "10.00", "discount": None, "line_total": "10.00"},
        {"line_no": 2, "sku": "B", "quantity": "2", "unit_price": "10.00", "discount": None, "line_total": "20.00"},
    ],
    "_hub": keys("ann@example.com"),
}


def profile(state: ActitoState, email: str = "ann@example.com") -> dict:
    found = state.find_profile("emailAddress", email)
    assert found is not None, f"no profile {email}"
    return found


# -- profiles: v5 and v4 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v5", "v4"])
def test_a_profile_is_created_then_updated_on_its_key(
    version: str, base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, api_version=version)
    created = send(destination, "contact_upsert", contact("ann@example.com", firstName="Ann"))
    updated = send(
        destination, "contact_upsert", contact("ann@example.com", lastName="Lee", subscriptions={"Newsletter": False})
    )
    assert (created.status, updated.status) == ("sent", "sent")
    assert created.ref == updated.ref == str(profile(state)["profileId"])
    assert profile(state)["attributes"] == {"emailAddress": "ann@example.com", "firstName": "Ann", "lastName": "Lee"}
    assert profile(state)["subscriptions"] == {"Newsletter": False}
    assert len(state.profiles) == 1


def test_v4_records_where_the_profile_came_from(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, api_version="v4", source="AcmeHub")
    send(destination, "contact_upsert", contact("ann@example.com"))
    collection = profile(state)["dataCollection"]
    assert (collection["source"], collection["way"]) == ("AcmeHub", "api")


def test_the_key_can_be_another_unique_attribute_from_an_external_id(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, key_attribute="customerId", key_from="external_id:erp")
    view = {"firstName": "Ann", "_hub": keys("ann@example.com", external_ids={"erp": "K-7"})}
    assert send(destination, "contact_upsert", view).status == "sent"
    assert state.find_profile("customerId", "K-7")["attributes"] == {"customerId": "K-7", "firstName": "Ann"}


def test_a_profile_without_its_key_is_invalid(destination: ActitoDestination) -> None:
    with pytest.raises(InvalidMessage, match="no emailAddress"):
        destination.prepare("contact_upsert", {"firstName": "Ann", "_hub": keys(None)})


def test_a_value_actito_refuses_is_rejected_with_its_body(destination: ActitoDestination) -> None:
    outcome = send(destination, "contact_upsert", contact("ann@example.com", sex="X"))
    assert (outcome.status, outcome.code) == ("rejected", 400)
    assert "INVALID_ATTRIBUTE_VALUE" in (outcome.body or "")


def test_a_delete_of_a_profile_already_gone_is_skipped(destination: ActitoDestination, state: ActitoState) -> None:
    send(destination, "contact_upsert", contact("ann@example.com"))
    view = {"_hub": {**keys("ann@example.com"), "merged_into": None, "remote_id": None}}
    assert send(destination, "contact_delete", view).status == "sent"
    assert state.profiles == {}
    assert send(destination, "contact_delete", view).status == "skipped"


def test_a_merged_customer_is_never_deleted_by_key(destination: ActitoDestination, state: ActitoState) -> None:
    send(destination, "contact_upsert", contact("ann@example.com"))
    view = {"_hub": {**keys("ann@example.com"), "merged_into": 99, "remote_id": None}}
    assert send(destination, "contact_delete", view).status == "skipped"
    assert len(state.profiles) == 1


# -- tokens ---------------------------------------------------------------------------------------------------------


def test_one_token_serves_many_calls(destination: ActitoDestination, state: ActitoState) -> None:
    for n in range(3):
        send(destination, "contact_upsert", contact(f"p{n}@example.com"))
    assert state.tokens_issued == 1


def test_a_token_refused_with_401_is_renewed_once_and_the_call_retried(
    destination: ActitoDestination, state: ActitoState
) -> None:
    send(destination, "contact_upsert", contact("ann@example.com"))
    state.expire_tokens()
    assert send(destination, "contact_upsert", contact("bob@example.com")).status == "sent"
    assert state.tokens_issued == 2
    assert state.find_profile("emailAddress", "bob@example.com") is not None


def test_a_token_is_renewed_before_it_expires(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    state.token_ttl = 60.3  # hub renews 60 s before the announced expiry
    destination = make(base_url)
    send(destination, "contact_upsert", contact("ann@example.com"))
    time.sleep(0.4)
    send(destination, "contact_upsert", contact("bob@example.com"))
    assert state.tokens_issued == 2
    assert destination.auth.renewals == 2


def test_a_refused_api_key_is_auth(base_url: str, make: Callable[..., ActitoDestination]) -> None:
    outcome = send(make(base_url, api_key="wrong"), "contact_upsert", contact("ann@example.com"))
    assert (outcome.status, outcome.code) == ("auth", 401)


def test_a_token_request_lost_in_transit_is_retryable(base_url: str, make: Callable[..., ActitoDestination]) -> None:
    injector = FaultInjector(emulator.app(calls_per_minute=None), Faults(drop_rate=1.0, paths=["/auth/token"]))
    with serve(injector) as url:
        destination = make(url)
        outcome = send(destination, "trigger", {"trigger_id": "welcome", "data": {}, "_hub": keys("a@example.com")})
    assert outcome.status == "retryable"


@pytest.mark.parametrize(("value", "seconds"), [("900s", 900.0), ("600", 600.0), (840, 840.0), ("soon", 900.0)])
def test_expires_in_reads_actitos_seconds(value: object, seconds: float) -> None:
    assert expires_in(value) == seconds


# -- orders, segments, triggers ----------------------------------------------------------------------------------------


def test_an_order_goes_to_the_orders_table_with_its_lines(destination: ActitoDestination, state: ActitoState) -> None:
    send(destination, "contact_upsert", contact("ann@example.com"))
    assert send(destination, "order", ORDER).status == "sent"
    assert state.records["ORDERS"]["webshop:W-1"]["orderMoment"] == "2026-03-01 10:14:00"  # Brussels time
    assert sorted(state.records["ORDER_LINES"]) == ["webshop:W-1:1", "webshop:W-1:2"]
    assert [e["event"] for e in state.events] == ["order_created"]


def test_an_order_before_its_profile_is_retried_later(destination: ActitoDestination) -> None:
    outcome = send(destination, "order", ORDER)
    assert (outcome.status, outcome.retry_after) == ("retryable", 60.0)


def test_segments_go_to_the_configured_segmentation_and_category(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, segments={"tier_a": {"segmentation": "Tier", "category": "A"}})
    send(destination, "contact_upsert", contact("ann@example.com"))
    entered = {"segment": "tier_a", "change": "entered", "_hub": keys("ann@example.com")}
    other = {"segment": "lapsing", "change": "entered", "_hub": keys("ann@example.com")}
    assert send(destination, "segment_membership", entered).status == "sent"
    assert send(destination, "segment_membership", other).status == "sent"
    assert profile(state)["segmentations"] == {"Tier": ["A"], "HubSegments": ["lapsing"]}
    assert send(destination, "segment_membership", {**entered, "change": "left"}).status == "sent"
    assert profile(state)["segmentations"] == {"HubSegments": ["lapsing"]}


def test_leaving_a_segment_without_a_profile_is_skipped(destination: ActitoDestination) -> None:
    left = {"segment": "vip", "change": "left", "_hub": keys("nobody@example.com")}
    assert send(destination, "segment_membership", left).status == "skipped"


def test_a_trigger_naming_a_campaign_sends_a_transactional_mail(
    destination: ActitoDestination, state: ActitoState
) -> None:
    data = {"order": {"total": 49.9, "lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}, "tags": ["x", "y"]}
    view = {"trigger_id": "mail:post-purchase", "data": data, "_hub": keys("ann@example.com")}
    assert send(destination, "trigger", view).status == "sent"
    (mail,) = state.mails
    assert mail["campaign"] == "post-purchase"
    assert mail["parameters"] == {
        "order_total": ["49.9"],
        "order_lines_sku": ["A", "B"],
        "order_lines_qty": ["1", "2"],
        "tags": ["x", "y"],
    }


def test_a_table_trigger_inserts_an_interaction_that_starts_the_scenario(
    destination: ActitoDestination, state: ActitoState
) -> None:
    send(destination, "contact_upsert", contact("ann@example.com"))
    cart = {"id": 3, "external_id": "C-3", "total": 25.0, "currency": "EUR", "items": [{"sku": "A"}, {"sku": "B"}]}
    data = {"trigger": "abandoned_cart", "event": {"at": "2026-03-01T09:00:00+00:00"}, "cart": cart}
    view = {"trigger_id": "table:CARTS", "data": data, "_hub": keys("ann@example.com")}
    assert send(destination, "trigger", view).status == "sent"
    assert send(destination, "trigger", view).status == "sent"  # the same row again: no second event
    (event,) = state.events
    assert (event["event"], event["businessKey"]) == ("cart_abandoned", "abandoned_cart:C-3")
    assert event["record"]["itemSkus"] == "A,B"


def test_mail_parameters_leave_out_nulls_and_line_up_lists_of_objects() -> None:
    data = {"a": None, "items": [{"sku": "A", "name": None}, {"sku": "B", "name": "Bee"}]}
    assert mail_parameters(data) == [
        {"key": "items_sku", "values": ["A", "B"]},
        {"key": "items_name", "values": ["", "Bee"]},
    ]


def test_a_lost_mail_is_unknown_but_a_lost_interaction_row_is_retryable(
    make: Callable[..., ActitoDestination],
) -> None:
    injector = FaultInjector(emulator.app(calls_per_minute=None))
    with serve(injector) as url:
        destination = make(url)
        send(destination, "contact_upsert", contact("ann@example.com"))
        injector.faults = Faults(drop_rate=1.0, methods=["POST"])
        mail = send(destination, "trigger", {"trigger_id": "welcome", "data": {}, "_hub": keys("ann@example.com")})
        row = {"trigger_id": "table:CARTS", "data": {"cart": {"id": 1}}, "_hub": keys("ann@example.com")}
        interaction = send(destination, "trigger", row)
    assert (mail.status, interaction.status) == ("unknown", "retryable")


# -- check() ----------------------------------------------------------------------------------------------------------


def test_check_names_the_entity_and_table(destination: ActitoDestination) -> None:
    result = destination.check()
    assert result.ok, result.message
    assert "entity hub, profile table customers" in result.message


def test_check_says_the_api_key_was_refused(base_url: str, make: Callable[..., ActitoDestination]) -> None:
    result = make(base_url, api_key="wrong-key").check()
    assert not result.ok
    assert "refused the API key" in result.message and "wrong-key" not in result.message


def test_check_names_a_missing_profile_table(base_url: str, make: Callable[..., ActitoDestination]) -> None:
    result = make(base_url, profile_table="shoppers").check()
    assert not result.ok
    assert "no profile table 'shoppers'" in result.message
