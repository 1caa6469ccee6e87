"""The bulk path: when hub imports instead of calling one by one, per-row results, and the daily import quota."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.server import serve
from hub_plugins.actito import emulator
from hub_plugins.actito._state import ActitoState
from hub_plugins.actito.bulk import ImportLedger
from hub_plugins.actito.destination import ActitoDestination
from tests.plugins.actito._support import (
    actito_hub,
    contact,
    deliver_once,
    drain,
    enqueue,
    keys,
    people,
    send_all,
    statuses,
)

EVENING = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 21:00 in Brussels: three hours (and a margin) to the new day


def order(email: str, number: int, lines: int = 2) -> dict:
    items = [
        {"line_no": n, "sku": f"S{n}", "quantity": "1", "unit_price": "5.00", "discount": None, "line_total": "5.00"}
        for n in range(1, lines + 1)
    ]
    head = {"source": "webshop", "external_id": f"W-{number}", "placed_at": "2026-03-01T09:00:00+00:00"}
    return {"order": head, "lines": items, "_hub": keys(email, number)}


def imports(state: ActitoState, table: str = "customers") -> int:
    return state.imports_today(table)


# -- the choice ------------------------------------------------------------------------------------------------------


def test_a_batch_below_the_threshold_goes_one_by_one(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, bulk_threshold=5)
    outcomes = send_all(destination, "contact_upsert", people(4))
    assert {o.status for o in outcomes} == {"sent"}
    assert (imports(state), len(state.profiles)) == (0, 4)


def test_a_batch_at_the_threshold_goes_as_one_import(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, bulk_threshold=5)
    before = state.requests
    outcomes = send_all(destination, "contact_upsert", people(5))
    assert {o.status for o in outcomes} == {"sent"}
    assert (imports(state), len(state.profiles)) == (1, 5)
    assert state.requests - before <= 4  # token, import, status, report


def test_rows_an_import_rejects_are_rejected_with_their_reason(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, bulk_threshold=3)
    views = [contact("a@example.com", 1), contact("not-an-email", 2), contact("c@example.com", 3, sex="X")]
    outcomes = send_all(destination, "contact_upsert", views)
    assert [o.status for o in outcomes] == ["sent", "rejected", "rejected"]
    assert outcomes[1].body is not None and outcomes[1].body.startswith("customers line 3: INVALID_EMAIL_ADDRESS")
    assert "sex" in (outcomes[2].body or "")
    assert len(state.profiles) == 1


def test_subscriptions_travel_in_the_import(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, bulk_threshold=2)
    views = [contact("a@example.com", 1, subscriptions={"Newsletter": True}), contact("b@example.com", 2)]
    send_all(destination, "contact_upsert", views)
    assert state.find_profile("emailAddress", "a@example.com")["subscriptions"] == {"Newsletter": True}
    assert state.find_profile("emailAddress", "b@example.com")["subscriptions"] == {}


def test_orders_are_imported_then_their_lines(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, bulk_threshold=3)
    send_all(destination, "contact_upsert", [contact("a@example.com", 1), contact("b@example.com", 2)])
    batch = [order("a@example.com", 1), order("b@example.com", 2, lines=3), order("nobody@example.com", 3)]
    outcomes = send_all(destination, "order", batch)
    assert [o.status for o in outcomes] == ["sent", "sent", "retryable"]  # the third waits for its profile
    assert (imports(state, "ORDERS"), imports(state, "ORDER_LINES")) == (1, 1)
    assert len(state.records["ORDER_LINES"]) == 5
    assert [e["businessKey"] for e in state.events] == ["webshop:W-1", "webshop:W-2"]


def test_the_import_is_polled_until_its_report_is_in(make: Callable[..., ActitoDestination]) -> None:
    app = emulator.app(calls_per_minute=None, import_seconds=0.15)
    with serve(app) as url:
        outcomes = send_all(make(url, bulk_threshold=2, poll_interval=0.05), "contact_upsert", people(2))
    assert {o.status for o in outcomes} == {"sent"}


def test_an_import_whose_report_never_came_is_polled_again_not_repeated(make: Callable[..., ActitoDestination]) -> None:
    app = emulator.app(calls_per_minute=None, import_seconds=0.3)
    with serve(app) as url:
        destination = make(url, bulk_threshold=2, poll_interval=0.05, poll_timeout=0.1)
        first = send_all(destination, "contact_upsert", people(2))
        time.sleep(0.3)
        again = send_all(destination, "contact_upsert", people(2), uncertain=True, attempts=1)
    assert {o.status for o in first} == {"unknown"}
    assert {o.status for o in again} == {"sent"}
    assert app.state.actito.imports_today("customers") == 1


# -- the quota -------------------------------------------------------------------------------------------------------


def test_with_no_import_left_some_go_one_by_one_and_the_rest_wait_for_tomorrow(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    state.clock = lambda: EVENING
    destination = make(base_url, bulk_threshold=5, one_by_one_max=2, imports_per_day=1)
    destination.ledger.clock = lambda: EVENING
    send_all(destination, "contact_upsert", people(5, "first"))

    outcomes = send_all(destination, "contact_upsert", people(6, "second"))

    assert [o.status for o in outcomes] == ["sent"] * 2 + ["retryable"] * 4
    assert outcomes[-1].retry_after == 3 * 3600 + 120
    assert (imports(state), state.refused_imports) == (1, 0)  # hub did not even ask


def test_the_quota_holds_over_many_runs_and_restarts(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    """Every run is a fresh process (a fresh destination, nothing remembered): Actito's refusal stops the 13th
    import, and its batch goes partly one by one, the rest waits; nothing is dead."""
    state.clock = lambda: EVENING
    seen: list[str] = []
    for run in range(15):
        destination = make(base_url, bulk_threshold=3, one_by_one_max=1)
        destination.ledger.clock = lambda: EVENING
        seen += [o.status for o in send_all(destination, "contact_upsert", people(3, f"run{run}-"))]
    assert (imports(state), state.refused_imports) == (12, 3)
    assert seen.count("sent") == 12 * 3 + 3 and seen.count("retryable") == 3 * 2
    assert "rejected" not in seen and "unknown" not in seen


def test_a_destination_that_counted_its_imports_does_not_ask_for_more(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    destination = make(base_url, bulk_threshold=2, one_by_one_max=2)
    for run in range(14):
        send_all(destination, "contact_upsert", people(2, f"run{run}-"))
    assert (imports(state), state.refused_imports) == (12, 0)
    assert len(state.profiles) == 28


def test_tomorrow_the_quota_is_there_again(
    base_url: str, make: Callable[..., ActitoDestination], state: ActitoState
) -> None:
    now = [EVENING]
    state.clock = lambda: now[0]
    destination = make(base_url, bulk_threshold=2, one_by_one_max=1, imports_per_day=1)
    destination.ledger.clock = lambda: now[0]
    send_all(destination, "contact_upsert", people(2, "today"))
    assert [o.status for o in send_all(destination, "contact_upsert", people(2, "later"))] == ["sent", "retryable"]
    now[0] = EVENING + timedelta(hours=4)
    assert [o.status for o in send_all(destination, "contact_upsert", people(2, "later"))] == ["sent", "sent"]
    assert imports(state) == 1  # today's, in the new day


def test_the_ledger_takes_every_table_or_none() -> None:
    ledger = ImportLedger(1, "Europe/Brussels", clock=lambda: EVENING)
    assert ledger.reserve("ORDERS")
    assert not ledger.reserve("ORDERS", "ORDER_LINES")
    assert ledger.remaining("ORDER_LINES") == 1
    ledger.release("ORDERS")
    assert ledger.reserve("ORDERS", "ORDER_LINES")
    ledger.exhaust("customers")
    assert ledger.remaining("customers") == 0
    assert ledger.seconds_to_reset() == 3 * 3600 + 120


# -- through the outbox and the dispatcher ---------------------------------------------------------------------------


def test_an_initial_load_goes_by_bulk_import_then_deltas_one_by_one(tmp_path: Path) -> None:
    app = emulator.app(calls_per_minute=None)
    state: ActitoState = app.state.actito
    with serve(app) as url, actito_hub(tmp_path, url) as hub:
        enqueue(hub, "contact_upsert", people(5000))
        summary = deliver_once(hub)
        assert (summary.sent, imports(state), len(state.profiles)) == ({"contact_upsert": 5000}, 1, 5000)
        calls = state.requests

        deltas = [contact(f"p{n}@example.com", n + 1, firstName=f"Changed{n}") for n in range(0, 5000, 250)]
        enqueue(hub, "contact_upsert", deltas, tag="v2")
        summary = deliver_once(hub)

    assert summary.sent == {"contact_upsert": 20}
    assert imports(state) == 1
    assert state.requests - calls == 20
    assert state.find_profile("emailAddress", "p250@example.com")["attributes"]["firstName"] == "Changed250"


def test_a_fault_injected_run_delivers_everything_once_within_the_quota(tmp_path: Path) -> None:
    app = emulator.app(calls_per_minute=None)
    state: ActitoState = app.state.actito
    faults = Faults(error_rate=0.15, rate_429=0.05, retry_after=0, drop_rate=0.1, seed=11)
    injector = FaultInjector(app, faults)
    views = people(600) + [contact(f"late{n}@example.com", 1000 + n) for n in range(30)]
    orders = [order(f"p{n}@example.com", n + 1) for n in range(0, 600, 20)]
    with serve(injector) as url, actito_hub(tmp_path, url, bulk_threshold=100) as hub:
        enqueue(hub, "contact_upsert", views)
        enqueue(hub, "order", orders)
        result = drain(hub)
        assert statuses(hub) == result
    assert result == {"sent": 630 + 30}
    assert sum(injector.stats[k] for k in ("error", "rate_429", "drop")) > 0
    assert len(state.profiles) == 630
    assert len(state.records["ORDER_LINES"]) == 60
    assert len(state.events) == 30  # one scenario event per order, however often it was sent
    assert imports(state) <= 12 and state.refused_imports == 0
