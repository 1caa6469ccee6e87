"""The voyado destination against the emulator over real loopback HTTP: each kind, lost answers, check()."""

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from hub.connectors import Outgoing
from hub.delivery.outcomes import InvalidMessage, Outcome
from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.server import serve
from hub_plugins.voyado import emulator
from hub_plugins.voyado._state import VoyadoState
from hub_plugins.voyado._validation import validate_receipt
from hub_plugins.voyado.destination import VoyadoDestination
from hub_plugins.voyado.receipts import build_receipt


def keys(email: str | None = "ann@example.com", **extra: Any) -> dict[str, Any]:
    return {"customer_id": 12, "email": email, "phone": None, "member_no": None, "external_ids": {}, **extra}


def contact_view(email: str | None = "ann@example.com", **fields: Any) -> dict[str, Any]:
    return {**fields, "_hub": keys(email)}


def order_view(*lines: dict[str, Any], **order: Any) -> dict[str, Any]:
    head = {
        "id": 5,
        "source": "pos",
        "external_id": "R1",
        "placed_at": "2026-03-01T09:14:00+00:00",
        "channel": "store",
        "store_external_id": "600",
        "currency": "SEK",
        "total": None,
        "status": "completed",
        "is_return": False,
        "original_order_external_id": None,
    }
    return {"order": {**head, **order}, "lines": list(lines), "_hub": keys()}


def line(line_no: int = 1, sku: str = "A", quantity: Any = 1, unit_price: Any = "100.00", **extra: Any) -> dict:
    total = extra.pop("line_total", str(Decimal(str(unit_price)) * Decimal(str(quantity))))
    return {"line_no": line_no, "sku": sku, "quantity": quantity, "unit_price": unit_price, "discount": None,
            "line_total": total, "product_name": None, "product_group": None, **extra}  # fmt: skip


def send(destination: VoyadoDestination, kind: str, view: dict[str, Any], **outgoing: Any) -> Outcome:
    payload = destination.prepare(kind, view)
    (outcome,) = destination.send(
        kind, [Outgoing(id=1, kind=kind, customer_id=12, payload=payload, idempotency_key="k", **outgoing)]
    )
    return outcome


@pytest.fixture
def faulty(voyado_app: Starlette) -> Iterator[tuple[FaultInjector, str]]:
    injector = FaultInjector(voyado_app)
    with serve(injector) as url:
        yield injector, url


@pytest.fixture
def faulty_destination(faulty: tuple[FaultInjector, str], make: Callable[..., VoyadoDestination]) -> VoyadoDestination:
    return make(faulty[1])


# -- contact_upsert -----------------------------------------------------------------------------------------------


def test_upsert_creates_a_missing_contact_and_returns_its_id(
    destination: VoyadoDestination, state: VoyadoState
) -> None:
    outcome = send(destination, "contact_upsert", contact_view(firstName="Ann"))
    assert outcome.status == "sent"
    assert state.contacts[outcome.ref]["attributes"] == {"email": "ann@example.com", "firstName": "Ann"}


def test_upsert_sends_the_source_header_on_create(destination: VoyadoDestination, state: VoyadoState) -> None:
    outcome = send(destination, "contact_upsert", contact_view())
    assert state.contacts[outcome.ref]["meta"]["source"] == "hub"


def test_upsert_updates_a_contact_found_by_email(destination: VoyadoDestination, state: VoyadoState) -> None:
    existing, _ = state.create_contact({"email": "ann@example.com", "firstName": "Old"})
    outcome = send(destination, "contact_upsert", contact_view(firstName="Ann", preferences={"acceptsEmail": True}))
    assert (outcome.status, outcome.ref) == ("sent", existing["id"])
    assert existing["attributes"]["firstName"] == "Ann"
    assert existing["preferences"]["acceptsEmail"] is True


def test_upsert_with_a_remote_ref_updates_that_contact(destination: VoyadoDestination, state: VoyadoState) -> None:
    existing, _ = state.create_contact({"email": "old@example.com"})
    outcome = send(destination, "contact_upsert", contact_view(email="new@example.com"), remote_ref=existing["id"])
    assert (outcome.status, outcome.ref) == ("sent", existing["id"])
    assert existing["attributes"]["email"] == "new@example.com"
    assert len(state.contacts) == 1


def test_upsert_of_a_contact_deleted_in_voyado_creates_it_again(
    destination: VoyadoDestination, state: VoyadoState
) -> None:
    outcome = send(destination, "contact_upsert", contact_view(), remote_ref="3f1c0ef4-gone")
    assert outcome.status == "sent"
    assert outcome.ref != "3f1c0ef4-gone"
    assert list(state.contacts) == [outcome.ref]


def test_an_uncertain_upsert_finds_the_contact_the_lost_attempt_created(
    faulty: tuple[FaultInjector, str], faulty_destination: VoyadoDestination, state: VoyadoState
) -> None:
    injector, _ = faulty
    injector.faults = Faults(drop_rate=1.0, paths=["/api/v2/contacts"], methods=["POST"])
    lost = send(faulty_destination, "contact_upsert", contact_view())
    injector.faults = Faults()
    retried = send(faulty_destination, "contact_upsert", contact_view(), uncertain=True, attempts=1)
    assert lost.status == "unknown"
    assert (retried.status, retried.ref) == ("sent", next(iter(state.contacts)))
    assert len(state.contacts) == 1


def test_a_lookup_lost_in_transit_is_retryable_not_unknown(
    faulty: tuple[FaultInjector, str], faulty_destination: VoyadoDestination, state: VoyadoState
) -> None:
    faulty[0].faults = Faults(drop_rate=1.0, paths=["/api/v2/contacts/id"])
    outcome = send(faulty_destination, "contact_upsert", contact_view())
    assert outcome.status == "retryable"
    assert state.contacts == {}


def test_upsert_with_several_matches_updates_the_first(
    destination: VoyadoDestination, state: VoyadoState, make: Callable[..., VoyadoDestination]
) -> None:
    first, _ = state.create_contact({"email": "a@example.com", "mobilePhone": "+46701234567"})
    state.create_contact({"email": "b@example.com", "mobilePhone": "+46701234567"})
    phone_destination = make(str(destination.http.base_url), match_key="mobilePhone")
    view = {"firstName": "Ann", "_hub": keys(email=None, phone="+46701234567")}
    outcome = send(phone_destination, "contact_upsert", view)
    assert (outcome.status, outcome.ref) == ("sent", first["id"])


def test_upsert_by_member_number_looks_up_the_custom_key(
    base_url: str, make: Callable[..., VoyadoDestination], state: VoyadoState
) -> None:
    existing, _ = state.create_contact({"email": "ann@example.com", "memberNumber": "M-9"})
    member_destination = make(base_url, match_key="memberNumber")
    outcome = send(member_destination, "contact_upsert", {"firstName": "Ann", "_hub": keys(member_no="M-9")})
    assert (outcome.status, outcome.ref) == ("sent", existing["id"])


def test_prepare_puts_the_hub_email_in_the_contact_when_the_mapping_has_none(destination: VoyadoDestination) -> None:
    payload = destination.prepare("contact_upsert", contact_view(firstName="Ann"))
    assert payload["contact"] == {"firstName": "Ann", "email": "ann@example.com"}


def test_prepare_without_a_match_key_is_invalid(destination: VoyadoDestination) -> None:
    with pytest.raises(InvalidMessage, match="no email"):
        destination.prepare("contact_upsert", contact_view(email=None, firstName="Ann"))


def test_a_contact_voyado_refuses_is_rejected_with_its_error_body(destination: VoyadoDestination) -> None:
    outcome = send(destination, "contact_upsert", contact_view(email="ann@example"))
    assert (outcome.status, outcome.code) == ("rejected", 400)
    assert "InvalidEmailAddress" in (outcome.body or "")


def test_a_refused_api_key_is_auth(base_url: str, make: Callable[..., VoyadoDestination]) -> None:
    wrong = make(base_url, api_key="wrong")
    assert send(wrong, "contact_upsert", contact_view()).status == "auth"


def test_a_429_is_retryable_with_retry_after(destination: VoyadoDestination, state: VoyadoState) -> None:
    state.rate_limit = 0
    outcome = send(destination, "contact_upsert", contact_view())
    assert (outcome.status, outcome.code, outcome.retry_after) == ("retryable", 429, 1.0)


# -- contact_delete -------------------------------------------------------------------------------------------------


def test_delete_by_remote_ref(destination: VoyadoDestination, state: VoyadoState) -> None:
    existing, _ = state.create_contact({"email": "ann@example.com"})
    outcome = send(destination, "contact_delete", {"_hub": keys()}, remote_ref=existing["id"])
    assert outcome.status == "sent"
    assert state.contacts == {}


def test_delete_of_a_contact_already_gone_is_skipped(destination: VoyadoDestination) -> None:
    outcome = send(destination, "contact_delete", {"_hub": keys()}, remote_ref="gone")
    assert outcome.status == "skipped"


def test_delete_without_a_remote_id_finds_the_contact_by_key(
    destination: VoyadoDestination, state: VoyadoState
) -> None:
    state.create_contact({"email": "ann@example.com"})
    assert send(destination, "contact_delete", {"_hub": keys(merged_into=None)}).status == "sent"
    assert state.contacts == {}


def test_a_merged_customer_without_a_remote_id_deletes_nothing_by_key(
    destination: VoyadoDestination, state: VoyadoState
) -> None:
    state.create_contact({"email": "ann@example.com"})
    outcome = send(destination, "contact_delete", {"_hub": keys(merged_into=7, remote_id=None)})
    assert outcome.status == "skipped"
    assert len(state.contacts) == 1


def test_a_merged_customer_is_deleted_by_its_remote_id(destination: VoyadoDestination, state: VoyadoState) -> None:
    merged, _ = state.create_contact({"email": "old@example.com"})
    outcome = send(destination, "contact_delete", {"_hub": keys(merged_into=7, remote_id=merged["id"])})
    assert outcome.status == "sent"
    assert state.contacts == {}


# -- order (receipts) -------------------------------------------------------------------------------------------------


def test_prepare_builds_a_receipt_in_local_time_with_a_stable_unique_id(destination: VoyadoDestination) -> None:
    receipt = destination.prepare("order", order_view(line()))
    assert receipt["uniqueReceiptId"] == "pos:R1"
    assert receipt["createdDate"] == "2026-03-01T10:14:00+01:00"
    assert receipt["contact"] == {"matchKey": "ann@example.com", "matchKeyType": "Email", "contactType": "Member"}
    assert receipt["items"] == [{"type": "PURCHASE", "sku": "A", "quantity": 1, "grossPaidPrice": 100.0}]


def test_negative_quantities_become_return_rows(destination: VoyadoDestination) -> None:
    receipt = destination.prepare("order", order_view(line(quantity=-2, unit_price="50.00"), total="-100.00"))
    assert receipt["items"] == [{"type": "RETURN", "sku": "A", "quantity": 2, "grossPaidPrice": -100.0}]
    assert receipt["totalGrossPrice"] == -100.0


def test_an_order_total_beyond_its_lines_is_an_adjustment_row(destination: VoyadoDestination) -> None:
    receipt = destination.prepare("order", order_view(line(), total="149.00"))
    assert receipt["items"][-1] == {"type": "ADJUSTMENT", "sku": "ADJUSTMENT", "quantity": 1, "grossPaidPrice": 49.0}
    assert receipt["paymentMethods"] == [{"type": "card", "description": "card", "value": 149.0}]


def test_the_connector_currency_fills_in_for_an_order_without_one(
    base_url: str, make: Callable[..., VoyadoDestination]
) -> None:
    with_default = make(base_url, currency="NOK")
    assert with_default.prepare("order", order_view(line(), currency=None))["currency"] == "NOK"


def test_an_order_without_currency_or_default_is_invalid(destination: VoyadoDestination) -> None:
    with pytest.raises(InvalidMessage, match="currency"):
        destination.prepare("order", order_view(line(), currency=None))


def test_an_order_without_lines_is_invalid(destination: VoyadoDestination) -> None:
    with pytest.raises(InvalidMessage, match="no lines"):
        destination.prepare("order", order_view())


def test_an_anonymous_order_is_invalid(destination: VoyadoDestination) -> None:
    with pytest.raises(InvalidMessage, match="no customer"):
        destination.prepare("order", {**order_view(line()), "_hub": None})


def test_an_order_is_registered_as_a_receipt(destination: VoyadoDestination, state: VoyadoState) -> None:
    contact, _ = state.create_contact({"email": "ann@example.com"})
    view = order_view(line(), line(2, "B", -1, "30.00"), total="120.00", original_order_external_id="R0")
    assert send(destination, "order", view).status == "sent"
    assert state.receipts["pos:R1"]["contactId"] == contact["id"]


def test_an_order_with_a_remote_ref_is_matched_by_contact_id(
    destination: VoyadoDestination, state: VoyadoState
) -> None:
    contact, _ = state.create_contact({"email": "someone.else@example.com"})
    assert send(destination, "order", order_view(line()), remote_ref=contact["id"]).status == "sent"
    assert state.receipts["pos:R1"]["contact"]["matchKeyType"] == "ContactId"


def test_an_order_sent_again_after_a_lost_answer_is_registered_once(
    faulty: tuple[FaultInjector, str], faulty_destination: VoyadoDestination, state: VoyadoState
) -> None:
    state.create_contact({"email": "ann@example.com"})
    faulty[0].faults = Faults(drop_rate=1.0, paths=["/api/v2/receipts"])
    lost = send(faulty_destination, "order", order_view(line()))
    faulty[0].faults = Faults()
    retried = send(faulty_destination, "order", order_view(line()), uncertain=True, attempts=1)
    assert (lost.status, retried.status) == ("unknown", "sent")
    assert (len(state.receipts), state.receipt_duplicates) == (1, 1)


def test_an_order_for_a_contact_voyado_does_not_have_yet_is_retryable(destination: VoyadoDestination) -> None:
    outcome = send(destination, "order", order_view(line()))
    assert (outcome.status, outcome.code, outcome.retry_after) == ("retryable", 404, 60.0)


@given(
    st.lists(
        st.tuples(
            st.integers(-3, 5).filter(bool),
            st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=6,
    ),
    st.one_of(st.none(), st.decimals(min_value=-9000, max_value=9000, places=2)),
)
def test_any_receipt_built_from_an_order_adds_up(lines: list[tuple[int, Decimal]], total: Decimal | None) -> None:
    view = order_view(*(line(n, f"S{n}", q, str(price)) for n, (q, price) in enumerate(lines, 1)), total=total)
    contact = {"matchKey": "ann@example.com", "matchKeyType": "Email"}
    receipt = build_receipt(
        view, contact, timezone="Europe/Stockholm", store_external_id=None, currency=None, payment_method="card"
    )
    validate_receipt(receipt)


# -- trigger ------------------------------------------------------------------------------------------------------


def test_a_trigger_starts_the_automation_once(destination: VoyadoDestination, state: VoyadoState) -> None:
    contact, _ = state.create_contact({"email": "ann@example.com"})
    view = {"trigger_id": "welcome", "data": {"voucher": "ABC"}, "_hub": keys()}
    outcome = send(destination, "trigger", view)
    assert (outcome.status, outcome.ref) == ("sent", contact["id"])
    assert state.triggers[0]["data"] == {"voucher": "ABC"}
    assert state.trigger_count("welcome") == 1


def test_a_trigger_whose_answer_is_lost_is_unknown(
    faulty: tuple[FaultInjector, str], faulty_destination: VoyadoDestination, state: VoyadoState
) -> None:
    state.create_contact({"email": "ann@example.com"})
    faulty[0].faults = Faults(drop_rate=1.0, paths=["/api/v2/automation/*"])
    outcome = send(faulty_destination, "trigger", {"trigger_id": "welcome", "data": {}, "_hub": keys()})
    assert outcome.status == "unknown"
    assert state.trigger_count("welcome") == 1
    assert VoyadoDestination.kinds["trigger"].guarantee == "at_most_once"


def test_a_trigger_for_a_contact_voyado_does_not_have_is_retryable(
    destination: VoyadoDestination, state: VoyadoState
) -> None:
    outcome = send(destination, "trigger", {"trigger_id": "welcome", "data": {}, "_hub": keys()})
    assert outcome.status == "retryable"
    assert state.triggers == []


def test_a_trigger_without_an_id_is_invalid(destination: VoyadoDestination) -> None:
    with pytest.raises(InvalidMessage, match="trigger_id"):
        destination.prepare("trigger", {"data": {}, "_hub": keys()})


# -- check ----------------------------------------------------------------------------------------------------------


def test_check_says_it_works(destination: VoyadoDestination) -> None:
    result = destination.check()
    assert result.ok
    assert "works" in result.message


def test_check_names_a_refused_key_without_showing_it(base_url: str, make: Callable[..., VoyadoDestination]) -> None:
    result = make(base_url, api_key="s3cret-value").check()
    assert not result.ok
    assert "refused the API key" in result.message
    assert "s3cret-value" not in result.message


def test_check_says_when_the_host_cannot_be_reached(make: Callable[..., VoyadoDestination]) -> None:
    with serve(emulator.app()) as url:
        pass  # the port is free again once the server stopped
    result = make(url).check()
    assert not result.ok
    assert result.message.startswith(f"cannot reach {url}")


def test_check_says_when_the_url_is_not_a_voyado_api(make: Callable[..., VoyadoDestination]) -> None:
    with serve(Starlette()) as url:
        result = make(url).check()
    assert not result.ok
    assert "not a Voyado Engage API" in result.message


def test_check_builds_its_own_client_when_none_is_bound(base_url: str, make: Callable[..., VoyadoDestination]) -> None:
    unbound = make(base_url)
    unbound.http.close()
    unbound._http = None
    assert unbound.check().ok


def test_the_api_key_never_shows_in_the_settings_repr(destination: VoyadoDestination) -> None:
    assert "emulator-key" not in repr(destination.settings)
    assert destination.client_options().headers["apikey"] == "emulator-key"
