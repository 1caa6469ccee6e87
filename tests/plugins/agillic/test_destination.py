"""The agillic destination against the emulator over real loopback HTTP: each kind, limits, lost answers, check()."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from hub.connectors import ConnectorContext
from hub.delivery.outcomes import InvalidMessage
from hub.sandbox.faults import FaultInjector, Faults
from hub_plugins.agillic import emulator, emulator_settings
from hub_plugins.agillic._state import AgillicState
from hub_plugins.agillic.destination import AgillicDestination
from hub_plugins.agillic.settings import AgillicSettings

from .conftest import keys, send


def contact(email: str = "ann@example.com", **fields: Any) -> dict[str, Any]:
    return {"EMAIL": email, **fields, "_hub": keys(email)}


def order(*line_numbers: int, email: str = "ann@example.com", **head: Any) -> dict[str, Any]:
    lines = [
        {"line_no": n, "sku": f"SKU-{n}", "quantity": "2", "unit_price": "49.50", "discount": None,
         "line_total": "99.00", "product_name": "Cover", "product_group": "grills"}
        for n in line_numbers or (1,)
    ]  # fmt: skip
    header = {"id": 5, "source": "webshop", "external_id": "W1", "placed_at": "2025-01-02T10:00:00+00:00",
              "channel": "web", "store_external_id": None, "currency": "DKK", "total": "99.00",
              "status": "completed", "is_return": False, "original_order_external_id": None, **head}  # fmt: skip
    return {"order": header, "lines": lines, "_hub": keys(email)}


def segment(name: str, change: str, email: str = "ann@example.com") -> dict[str, Any]:
    return {"segment": name, "change": change, "_hub": keys(email)}


def trigger(trigger_id: str, email: str = "ann@example.com", **data: Any) -> dict[str, Any]:
    return {"trigger_id": trigger_id, "data": data or {"sku": "GRILL-1"}, "_hub": keys(email)}


@pytest.fixture
def faulty(agillic_app: Starlette, use: Callable[[Any], str]) -> tuple[FaultInjector, str]:
    injector = FaultInjector(agillic_app)
    return injector, use(injector)


@pytest.fixture
def known(state: AgillicState) -> AgillicState:
    """The instance already has ann@example.com."""
    state.upsert("ann@example.com", {"personData": {}})
    return state


# -- contact_upsert -------------------------------------------------------------------------------------------------


def test_one_contact_is_put_and_its_recipient_id_is_the_ref(
    destination: AgillicDestination, state: AgillicState
) -> None:
    (outcome,) = send(destination, "contact_upsert", contact(FIRSTNAME="Ann", EMAIL_OPT_IN=True))
    assert (outcome.status, outcome.code, outcome.ref) == ("sent", 201, "ann@example.com")
    assert state.recipients["ann@example.com"] == {"EMAIL": "ann@example.com", "FIRSTNAME": "Ann", "EMAIL_OPT_IN": True}


def test_several_contacts_go_in_one_batch_call(destination: AgillicDestination, state: AgillicState) -> None:
    outcomes = send(destination, "contact_upsert", *(contact(f"p{n}@example.com") for n in range(3)))
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert (state.largest_batch, state.requests) == ({"recipients:batch": 3}, 2)  # the token, then one batch


def test_batches_are_split_by_size(base_url: str, make: Callable[..., AgillicDestination], state: AgillicState) -> None:
    small = make(base_url, max_request_bytes=2000)
    views = [contact(f"p{n}@example.com", FIRSTNAME="x" * 200) for n in range(20)]
    outcomes = send(small, "contact_upsert", *views)
    assert [o.status for o in outcomes] == ["sent"] * 20
    assert len(state.recipients) == 20
    assert 1 < state.largest_batch["recipients:batch"] < 10


def test_a_contact_too_large_for_one_call_is_rejected_unsent(
    base_url: str, make: Callable[..., AgillicDestination], state: AgillicState
) -> None:
    small = make(base_url, max_request_bytes=2000)
    outcomes = send(small, "contact_upsert", contact("big@example.com", FIRSTNAME="x" * 3000), contact())
    assert [o.status for o in outcomes] == ["rejected", "sent"]
    assert list(state.recipients) == ["ann@example.com"]


def test_a_repeated_recipient_in_a_batch_is_written_in_order(
    destination: AgillicDestination, state: AgillicState
) -> None:
    views = [contact(FIRSTNAME="Old"), contact("bob@example.com"), contact(FIRSTNAME="New")]
    assert [o.status for o in send(destination, "contact_upsert", *views)] == ["sent"] * 3
    assert state.recipients["ann@example.com"]["FIRSTNAME"] == "New"


def test_an_entry_the_batch_refuses_is_rejected_and_the_rest_sent(
    destination: AgillicDestination, state: AgillicState
) -> None:
    views = [contact("a@example.com"), contact("b@example.com", BIRTHDATE="31/12/1990"), contact("c@example.com")]
    outcomes = send(destination, "contact_upsert", *views)
    assert [o.status for o in outcomes] == ["sent", "rejected", "sent"]
    assert "InvalidFieldValue" in (outcomes[1].body or "")


def test_dates_go_out_in_the_instances_format(destination: AgillicDestination) -> None:
    payload = destination.prepare("contact_upsert", contact(BIRTHDATE="1990-12-31"))
    assert payload["personData"]["BIRTHDATE"] == "31.12.1990"


def test_the_date_format_is_a_setting(tmp_path: Path) -> None:
    settings = AgillicSettings(**emulator_settings("http://x"), date_format="yyyy/MM/dd")
    destination = AgillicDestination(settings, ConnectorContext("agillic", tmp_path))
    assert destination.prepare("contact_upsert", contact(BIRTHDATE="1990-12-31"))["personData"]["BIRTHDATE"] == (
        "1990/12/31"
    )


def test_a_date_format_without_a_day_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="needs a year"):
        AgillicSettings(**emulator_settings("http://x"), date_format="MM/yyyy")


def test_the_recipient_id_field_and_key_are_settings(base_url: str, make: Callable[..., AgillicDestination]) -> None:
    app_state = emulator.app(recipient_id_field="MEMBER_NO").state.agillic
    by_member = make(base_url, recipient_id_field="MEMBER_NO", recipient_id_key="member_no")
    payload = by_member.prepare("contact_upsert", {"FIRSTNAME": "Ann", "_hub": keys(member_no="M-9")})
    assert payload == {"recipient_id": "M-9", "personData": {"FIRSTNAME": "Ann", "MEMBER_NO": "M-9"}}
    assert app_state.recipient_id_field == "MEMBER_NO"


def test_prepare_refuses_field_names_that_are_not_upper_case(destination: AgillicDestination) -> None:
    with pytest.raises(InvalidMessage, match=r"UPPER_CASE.*firstName"):
        destination.prepare("contact_upsert", contact(firstName="Ann"))


def test_prepare_without_the_recipient_key_is_invalid(destination: AgillicDestination) -> None:
    with pytest.raises(InvalidMessage, match="no email"):
        destination.prepare("contact_upsert", {"FIRSTNAME": "Ann", "_hub": keys(email=None)})


def test_refused_credentials_are_auth(base_url: str, make: Callable[..., AgillicDestination]) -> None:
    wrong = make(base_url, client_secret="s3cr3t-xyz")
    (outcome,) = send(wrong, "contact_upsert", contact())
    assert (outcome.status, outcome.code) == ("auth", 401)
    assert "s3cr3t-xyz" not in (outcome.body or "")


def test_a_lost_upsert_answer_is_unknown_and_the_resend_lands_once(
    faulty: tuple[FaultInjector, str], make: Callable[..., AgillicDestination], state: AgillicState
) -> None:
    injector, url = faulty
    destination = make(url)
    injector.faults = Faults(drop_rate=1.0, paths=["/recipients/*"])
    (lost,) = send(destination, "contact_upsert", contact(FIRSTNAME="Ann"))
    injector.faults = Faults()
    (resent,) = send(destination, "contact_upsert", contact(FIRSTNAME="Ann"), uncertain=True)
    assert (lost.status, resent.status) == ("unknown", "sent")
    assert list(state.recipients) == ["ann@example.com"]


def test_a_token_request_that_fails_in_transit_is_retryable_not_unknown(
    faulty: tuple[FaultInjector, str], make: Callable[..., AgillicDestination], state: AgillicState
) -> None:
    injector, url = faulty
    destination = make(url)
    injector.faults = Faults(drop_rate=1.0, paths=["/oauth2/token"])
    (outcome,) = send(destination, "trigger", trigger("BIRTHDAY"))
    assert outcome.status == "retryable"
    assert state.achievements == []


def test_a_token_endpoint_error_is_retryable(
    faulty: tuple[FaultInjector, str], make: Callable[..., AgillicDestination]
) -> None:
    injector, url = faulty
    injector.faults = Faults(error_rate=1.0, paths=["/oauth2/token"])
    (outcome,) = send(make(url), "contact_upsert", contact())
    assert outcome.status == "retryable"
    assert (outcome.code or 0) >= 500


def test_the_concurrency_cap_refusal_is_retryable_and_changes_nothing(
    destination: AgillicDestination, state: AgillicState
) -> None:
    state.max_concurrent = 0
    (outcome,) = send(destination, "contact_upsert", contact())
    assert (outcome.status, outcome.code) == ("retryable", 429)
    assert state.recipients == {}


# -- contact_delete -------------------------------------------------------------------------------------------------


def test_delete_by_the_remote_ref(destination: AgillicDestination, known: AgillicState) -> None:
    (outcome,) = send(destination, "contact_delete", {"_hub": keys()}, remote_ref="ann@example.com")
    assert outcome.status == "sent"
    assert known.recipients == {}


def test_delete_of_a_recipient_already_gone_is_skipped(destination: AgillicDestination) -> None:
    (outcome,) = send(destination, "contact_delete", {"_hub": keys(merged_into=None)})
    assert outcome.status == "skipped"


def test_a_merged_customer_without_a_remote_id_deletes_nothing_by_key(
    destination: AgillicDestination, known: AgillicState
) -> None:
    (outcome,) = send(destination, "contact_delete", {"_hub": keys(merged_into=7, remote_id=None)})
    assert outcome.status == "skipped"
    assert list(known.recipients) == ["ann@example.com"]


# -- order ----------------------------------------------------------------------------------------------------------


def test_an_order_becomes_one_row_per_line_keyed_by_line(destination: AgillicDestination, known: AgillicState) -> None:
    (outcome,) = send(destination, "order", order(1, 2))
    rows = known.records_of("ann@example.com", "PURCHASES")
    assert outcome.status == "sent"
    assert [r["ID"] for r in rows] == ["webshop:W1:1", "webshop:W1:2"]
    assert rows[0] == {
        "ID": "webshop:W1:1", "ORDER_ID": "W1", "LINE_NO": 1, "SKU": "SKU-1", "PRODUCT_NAME": "Cover",
        "PRODUCT_GROUP": "grills", "QUANTITY": 2, "UNIT_PRICE": 49.5, "LINE_TOTAL": 99, "CURRENCY": "DKK",
        "PURCHASE_DATE": "02.01.2025 11:00:00", "CHANNEL": "web", "IS_RETURN": False,
    }  # fmt: skip


def test_a_resent_order_leaves_the_same_rows(destination: AgillicDestination, known: AgillicState) -> None:
    send(destination, "order", order(1, 2))
    (again,) = send(destination, "order", order(1, 2), uncertain=True)
    assert again.status == "sent"
    assert len(known.records_of("ann@example.com", "PURCHASES")) == 2


def test_an_order_over_1000_lines_is_split(destination: AgillicDestination, known: AgillicState) -> None:
    (outcome,) = send(destination, "order", order(*range(1, 1202)))
    assert outcome.status == "sent"
    assert len(known.records_of("ann@example.com", "PURCHASES")) == 1201
    assert known.largest_batch["oneToManyTables:batchUpdateRecords"] == 1000


def test_an_order_for_a_recipient_not_there_yet_is_retried_later(destination: AgillicDestination) -> None:
    (outcome,) = send(destination, "order", order())
    assert (outcome.status, outcome.code, outcome.retry_after) == ("retryable", 404, 60.0)


def test_an_order_for_a_table_the_instance_lacks_is_rejected(
    base_url: str, make: Callable[..., AgillicDestination], known: AgillicState
) -> None:
    (outcome,) = send(make(base_url, purchases_table="ORDERS"), "order", order())
    assert (outcome.status, outcome.code) == ("rejected", 404)
    assert "TableNotFound" in (outcome.body or "")


def test_an_order_without_a_customer_is_invalid(destination: AgillicDestination) -> None:
    with pytest.raises(InvalidMessage, match="no customer"):
        destination.prepare("order", {**order(), "_hub": None})


# -- segment_membership ---------------------------------------------------------------------------------------------


def test_a_segment_is_a_flag_field_by_default(destination: AgillicDestination, known: AgillicState) -> None:
    send(destination, "segment_membership", segment("newsletter", "entered"))
    assert known.recipients["ann@example.com"]["HUB_NEWSLETTER"] is True
    send(destination, "segment_membership", segment("newsletter", "left"))
    assert known.recipients["ann@example.com"]["HUB_NEWSLETTER"] is False


@pytest.fixture
def tiers(base_url: str, make: Callable[..., AgillicDestination]) -> AgillicDestination:
    fields = {t: {"field": "HUB_TIER", "value": t[-1].upper()} for t in ("tier_a", "tier_b")}
    return make(base_url, segment_fields=fields)


def test_a_value_field_holds_the_segments_value(tiers: AgillicDestination, known: AgillicState) -> None:
    send(tiers, "segment_membership", segment("tier_a", "entered"))
    assert known.recipients["ann@example.com"]["HUB_TIER"] == "A"
    (left,) = send(tiers, "segment_membership", segment("tier_a", "left"))
    assert left.status == "sent"
    assert "HUB_TIER" not in known.recipients["ann@example.com"]


def test_leaving_does_not_clear_the_value_another_segment_set(tiers: AgillicDestination, known: AgillicState) -> None:
    send(tiers, "segment_membership", segment("tier_a", "entered"))
    send(tiers, "segment_membership", segment("tier_b", "entered"))
    (left,) = send(tiers, "segment_membership", segment("tier_a", "left"))
    assert left.status == "skipped"
    assert known.recipients["ann@example.com"]["HUB_TIER"] == "B"


def test_a_move_within_one_batch_ends_on_the_new_value(tiers: AgillicDestination, known: AgillicState) -> None:
    known.upsert("ann@example.com", {"personData": {"HUB_TIER": "A"}})
    outcomes = send(tiers, "segment_membership", segment("tier_a", "left"), segment("tier_b", "entered"))
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert known.recipients["ann@example.com"]["HUB_TIER"] == "B"


@pytest.fixture
def groups(base_url: str, make: Callable[..., AgillicDestination]) -> AgillicDestination:
    return make(base_url, segment_mode="target_group")


def test_target_group_mode_adds_and_removes(groups: AgillicDestination, known: AgillicState) -> None:
    (added,) = send(groups, "segment_membership", segment("tier_a", "entered"))
    assert known.target_groups["HUB_TIER_A"] == {"ann@example.com"}
    (removed,) = send(groups, "segment_membership", segment("tier_a", "left"))
    assert (added.status, removed.status) == ("sent", "sent")
    assert known.target_groups["HUB_TIER_A"] == set()


def test_target_group_calls_carry_at_most_100_recipients(groups: AgillicDestination, state: AgillicState) -> None:
    people = [f"p{n}@example.com" for n in range(150)]
    for email in people:
        state.upsert(email, {"personData": {}})
    outcomes = send(groups, "segment_membership", *(segment("tier_a", "entered", email) for email in people))
    assert {o.status for o in outcomes} == {"sent"}
    assert len(state.target_groups["HUB_TIER_A"]) == 150
    assert state.largest_batch["recipients:addToStaticTargetGroup"] == 100


def test_a_recipient_not_there_yet_enters_its_group_later(groups: AgillicDestination) -> None:
    (outcome,) = send(groups, "segment_membership", segment("tier_a", "entered"))
    assert (outcome.status, outcome.retry_after) == ("retryable", 60.0)


def test_an_unknown_target_group_is_rejected(groups: AgillicDestination, known: AgillicState) -> None:
    (outcome,) = send(groups, "segment_membership", segment("no_such_group", "entered"))
    assert (outcome.status, outcome.code) == ("rejected", 404)


# -- trigger --------------------------------------------------------------------------------------------------------


def test_an_event_is_achieved_with_the_trigger_data_as_context(
    destination: AgillicDestination, known: AgillicState
) -> None:
    (outcome,) = send(destination, "trigger", trigger("BIRTHDAY", sku="GRILL-1"))
    assert outcome.status == "sent"
    assert known.achievements[0]["context"] == {"schemaName": "HUB_TRIGGER", "contextData": {"sku": "GRILL-1"}}


def test_without_a_context_schema_an_event_is_achieved_plainly(
    base_url: str, make: Callable[..., AgillicDestination], known: AgillicState
) -> None:
    (outcome,) = send(make(base_url), "trigger", trigger("event:BIRTHDAY"))
    assert outcome.status == "sent"
    assert (known.event_counts[("ann@example.com", "BIRTHDAY")], known.achievements[0]["context"]) == (1, None)


def test_a_flow_trigger_runs_the_flow_with_context(destination: AgillicDestination, known: AgillicState) -> None:
    (outcome,) = send(destination, "trigger", trigger("flow:WIN_BACK", days=90))
    assert outcome.status == "sent"
    assert known.executions[0]["contextData"] == {"days": 90}


def test_a_flow_trigger_needs_a_context_schema(base_url: str, make: Callable[..., AgillicDestination]) -> None:
    with pytest.raises(InvalidMessage, match="context_schema"):
        make(base_url).prepare("trigger", trigger("flow:WIN_BACK"))


def test_an_unknown_event_or_flow_is_rejected_with_the_body(
    destination: AgillicDestination, known: AgillicState
) -> None:
    event, flow = (send(destination, "trigger", trigger(t))[0] for t in ("NO_SUCH", "flow:NO_SUCH"))
    assert (event.status, flow.status) == ("rejected", "rejected")
    assert "EventNotFound" in (event.body or "") and "FlowNotFound" in (flow.body or "")


def test_a_trigger_for_a_recipient_not_there_yet_is_retried_later(destination: AgillicDestination) -> None:
    (outcome,) = send(destination, "trigger", trigger("BIRTHDAY"))
    assert (outcome.status, outcome.retry_after) == ("retryable", 60.0)


def test_a_lost_trigger_answer_is_unknown(
    faulty: tuple[FaultInjector, str], make: Callable[..., AgillicDestination], known: AgillicState
) -> None:
    injector, url = faulty
    destination = make(url)
    send(destination, "contact_upsert", contact())  # a token first
    injector.faults = Faults(drop_rate=1.0)
    (outcome,) = send(destination, "trigger", trigger("BIRTHDAY"))
    assert outcome.status == "unknown"
    assert known.event_counts[("ann@example.com", "BIRTHDAY")] == 1


def test_a_trigger_id_of_another_kind_is_invalid(destination: AgillicDestination) -> None:
    with pytest.raises(InvalidMessage, match="flow:FLOW_ID"):
        destination.prepare("trigger", trigger("journey:X"))


# -- check() --------------------------------------------------------------------------------------------------------


def test_check_says_it_works_and_names_the_table(destination: AgillicDestination) -> None:
    result = destination.check()
    assert result.ok
    assert "PURCHASES" in result.message


def test_check_names_refused_credentials(base_url: str, make: Callable[..., AgillicDestination]) -> None:
    result = make(base_url, client_secret="wrong-secret").check()
    assert not result.ok
    assert "client credentials" in result.message and "wrong-secret" not in result.message


def test_check_names_a_missing_purchases_table(base_url: str, make: Callable[..., AgillicDestination]) -> None:
    result = make(base_url, purchases_table="ORDERS").check()
    assert not result.ok
    assert "no One-to-Many table ORDERS" in result.message


def test_check_without_a_bound_client_builds_its_own(base_url: str, tmp_path: Path) -> None:
    settings = AgillicSettings(**emulator_settings(base_url))
    assert AgillicDestination(settings, ConnectorContext("agillic", tmp_path)).check().ok


def test_check_of_something_that_is_not_agillic(
    make: Callable[..., AgillicDestination], use: Callable[[Any], str]
) -> None:
    result = make(use(Starlette())).check()
    assert not result.ok
    assert "Agillic API" in result.message
