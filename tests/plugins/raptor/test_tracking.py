"""Buy events: what ``prepare`` makes of an order view, and how ``send`` streams its lines over loopback HTTP.

The rule under test: an order is ``retryable`` only while none of its lines may have reached Raptor; once one
has, every later line is tried here and never one that got a 2xx or lost its answer is sent again.
"""

import base64
from collections.abc import Callable
from typing import Any

import pytest

from hub.connectors import Outgoing
from hub.delivery.outcomes import InvalidMessage
from hub.sandbox.faults import FaultInjector, Faults
from hub_plugins.raptor._state import RaptorState
from hub_plugins.raptor.connector import RaptorConnector
from hub_plugins.raptor.settings import RaptorSettings
from hub_plugins.raptor.tracking import buy_events

from .conftest import Door

SETTINGS = RaptorSettings(customer_id="4711")


def order_view(*skus: str, email: str | None = "Ann@Example.com", member_no: str | None = None, **order: Any):
    head = {"id": 5, "source": "pos", "external_id": "R1", "channel": "store", "is_return": False, **order}
    lines = [
        {"line_no": n, "sku": sku, "quantity": "1", "unit_price": "249.50", "line_total": "249.50"}
        for n, sku in enumerate(skus, 1)
    ]
    keys = {"customer_id": 12, "email": email, "member_no": member_no, "phone": None, "external_ids": {}}
    return {"order": head, "lines": lines, "_hub": keys}


def message(payload: dict[str, Any], id: int = 1) -> Outgoing:
    return Outgoing(id=id, kind="order", customer_id=12, payload=payload, idempotency_key=f"raptor:order:{id}")


# ------------------------------------------------------------------------------------------------------ prepare


def test_each_line_becomes_a_buy_with_the_mapped_positions_and_a_base64_email_as_ruid() -> None:
    payload = buy_events(order_view("GRL-1", "CVR-2"), SETTINGS)

    assert payload["ruid"] == base64.b64encode(b"ann@example.com").decode()
    assert payload["order_id"] == "R1"
    assert [line["params"] for line in payload["lines"]] == [
        {"p1": "buy", "p2": "GRL-1", "p21": "R1"},
        {"p1": "buy", "p2": "CVR-2", "p21": "R1"},
    ]


def test_a_store_customer_known_only_by_member_number_is_sent_by_it() -> None:
    payload = buy_events(order_view("GRL-1", email=None, member_no="700123"), SETTINGS)

    assert base64.b64decode(payload["ruid"]) == b"700123"


def test_a_customer_with_none_of_the_user_keys_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="email or member_no"):
        buy_events(order_view("GRL-1", email=None), SETTINGS)


def test_extra_positions_carry_price_master_id_and_store_and_empty_values_are_left_out() -> None:
    settings = RaptorSettings(
        customer_id="4711",
        parameters={
            "p1": "event",
            "p2": "sku",
            "p21": "order_id",
            "p12": "unit_price",
            "p18": "master_id",
            "p30": "store",
        },
        order_id="source_external_id",
        feed={"master_id_pattern": r"^(.+)-\d+$"},
    )

    (line,) = buy_events(order_view("GRL-7-42"), settings)["lines"]

    assert line["params"] == {"p1": "buy", "p2": "GRL-7-42", "p21": "pos:R1", "p12": "249.5", "p18": "GRL-7"}


def test_returns_other_channels_and_lines_without_a_positive_quantity_are_not_buys() -> None:
    view = order_view("GRL-1", "CVR-2")
    view["lines"][1]["quantity"] = "-1"

    assert [line["params"]["p2"] for line in buy_events(view, SETTINGS)["lines"]] == ["GRL-1"]
    assert buy_events(order_view("GRL-1", is_return=True), SETTINGS)["skip"] == "a return is not a buy"
    store_only = RaptorSettings(customer_id="4711", channels=["store"])
    assert "channel 'web'" in buy_events(order_view("GRL-1", channel="web"), store_only)["skip"]


def test_settings_refuse_a_mapping_without_the_product_and_static_parameters_that_clash() -> None:
    with pytest.raises(ValueError, match="sku"):
        RaptorSettings(customer_id="4711", parameters={"p1": "event", "p21": "order_id"})
    with pytest.raises(ValueError, match="ruid"):
        RaptorSettings(customer_id="4711", static_parameters={"ruid": "x"})


# --------------------------------------------------------------------------------------------------------- send


def test_every_line_arrives_once_on_the_stream_endpoint(connector: RaptorConnector, state: RaptorState) -> None:
    (outcome,) = connector.send("order", [message(connector.prepare("order", order_view("A", "B", "C")))])

    assert outcome.status == "sent"
    assert state.buy_counts() == {("R1", "A"): 1, ("R1", "B"): 1, ("R1", "C"): 1}
    assert {e["endpoint"] for e in state.events} == {"stream"}
    assert state.events[0]["params"]["source"] == "webhook"


def test_a_skipped_order_sends_nothing(connector: RaptorConnector, state: RaptorState) -> None:
    (outcome,) = connector.send("order", [message(connector.prepare("order", order_view("A", is_return=True)))])

    assert outcome.status == "skipped" and state.events == []


@pytest.mark.parametrize(
    ("faults", "code"), [(Faults(error_rate=1.0), 500), (Faults(rate_429=1.0, retry_after=3), 429)]
)
def test_a_failure_on_the_first_line_is_retryable_and_nothing_landed(
    connector: RaptorConnector, state: RaptorState, injector: FaultInjector, faults: Faults, code: int
) -> None:
    injector.faults = faults

    (outcome,) = connector.send("order", [message(connector.prepare("order", order_view("A", "B")))])

    assert outcome.status == "retryable" and outcome.code in (code, 502, 503)
    assert state.events == []


def test_once_under_way_the_later_lines_are_retried_here_and_land_once(
    connector: RaptorConnector, state: RaptorState, injector: FaultInjector
) -> None:
    """Line 1 lands; lines 2 and 3 meet 5xx and 429 first, and are tried again within the same send."""
    injector.faults = Faults(error_rate=0.35, rate_429=0.15, retry_after=0, seed=2)
    payload = connector.prepare("order", order_view(*(f"S{n}" for n in range(12))))
    outcomes = []
    while not outcomes or outcomes[-1].status == "retryable":  # the core's retry while nothing landed
        outcomes += connector.send("order", [message(payload)])

    assert outcomes[-1].status == "sent", outcomes[-1]
    assert injector.stats["error"] + injector.stats["rate_429"] > len(outcomes) - 1, "no later line was faulted"
    assert set(state.buy_counts().values()) == {1} and len(state.buy_counts()) == 12


@pytest.mark.parametrize("loss", ["cut", "read_timeout"])
def test_a_lost_answer_is_never_resent_and_the_order_is_parked_naming_the_line(
    make: Callable[..., RaptorConnector], base_url: str, state: RaptorState, door: Door, loss: str
) -> None:
    """Raptor processed line 2, its answer was lost: the other lines still go, line 2 is not sent again, and the
    outcome is unknown (at most once: the core parks it) with line 2 named."""
    connector = make(base_url, timeout=0.3)
    delay = 0.6 if loss == "read_timeout" else 0.0
    payload = connector.prepare("order", order_view("A", "B", "C"))
    door.fault(2, Faults(drop_rate=1.0, drop_delay=delay))

    (outcome,) = connector.send("order", [message(payload)])

    assert door.hits == 1
    assert outcome.status == "unknown"
    assert "2 of 3 lines confirmed (1, 3)" in outcome.body and "line 2 uncertain" in outcome.body
    assert state.buy_counts() == {("R1", "A"): 1, ("R1", "B"): 1, ("R1", "C"): 1}


def test_a_line_out_of_attempts_parks_the_order_names_what_raptor_lacks_and_spares_the_rest(
    make: Callable[..., RaptorConnector], base_url: str, state: RaptorState, door: Door
) -> None:
    """Line 2 meets 5xx on both its attempts: line 3 is not tried (Raptor stopped answering), and the parked
    order's reason names both as missing."""
    connector = make(base_url, line_attempts=2)
    payload = connector.prepare("order", order_view("A", "B", "C"))
    door.fault(2, Faults(error_rate=1.0), times=2)

    (outcome,) = connector.send("order", [message(payload)])

    assert outcome.status == "unknown"
    assert "1 of 3 lines confirmed (1)" in outcome.body and "line 2 unsent (2 attempts" in outcome.body
    assert "line 3 unsent (not tried" in outcome.body
    assert state.buy_counts() == {("R1", "A"): 1} and door.count == 3


def test_a_lost_answer_on_the_first_line_still_sends_the_rest_once(
    connector: RaptorConnector, state: RaptorState, door: Door
) -> None:
    door.fault(1, Faults(drop_rate=1.0))

    (outcome,) = connector.send("order", [message(connector.prepare("order", order_view("A", "B")))])

    assert outcome.status == "unknown" and "line 1 uncertain" in outcome.body
    assert state.buy_counts() == {("R1", "A"): 1, ("R1", "B"): 1}
