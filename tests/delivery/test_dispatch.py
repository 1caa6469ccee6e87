"""What the dispatcher does with each outcome a destination reports, on a real SQLite outbox."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import time_machine

from hub.delivery.dispatcher import deliver
from hub.delivery.outcomes import Outcome
from hub.models.delivery import DestinationState, OutboundState


def test_sent_rows_are_marked_sent_and_the_contact_id_is_remembered(env):
    key = env.enqueue("contact_upsert", customer_id=7)
    summary = deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.attempts, row.remote_ref) == ("sent", 1, f"r-{key}")
    assert row.sent_at is not None and row.claimed_by is None
    with env.hub.engine.connect() as conn:
        remote = conn.execute(sa.select(OutboundState.__table__.c.remote_id)).scalar_one()
    assert remote == f"r-{key}"
    assert summary["dest"].sent == {"contact_upsert": 1}
    assert (summary["dest"].created, summary["dest"].updated) == (1, 0)


def test_a_known_contact_is_sent_with_its_remote_ref_and_counted_as_an_update(env):
    env.enqueue("contact_upsert", customer_id=7, key="first")
    deliver(env.hub)
    env.enqueue("contact_upsert", customer_id=7, key="second")
    seen = []
    env.script().on("second", lambda m: seen.append(m.remote_ref) or Outcome.sent(m.remote_ref))
    summary = deliver(env.hub)
    assert seen == ["r-first"]
    assert (summary["dest"].created, summary["dest"].updated) == (0, 1)


def test_a_sent_contact_delete_forgets_the_remote_id(env):
    env.enqueue("contact_upsert", customer_id=7)
    deliver(env.hub)
    env.enqueue("contact_delete", customer_id=7)
    deliver(env.hub)
    with env.hub.engine.connect() as conn:
        assert conn.execute(sa.select(OutboundState.__table__.c.remote_id)).scalar_one() is None


def test_skipped_is_recorded_and_is_not_an_error(env):
    key = env.enqueue("contact_delete", customer_id=3)
    env.script().on(key, Outcome.skipped("no such contact"))
    summary = deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.error_class, row.last_error) == ("skipped", "skipped", "no such contact")
    assert summary["dest"].skipped == 1 and summary.ok


def test_invalid_is_dead_with_the_reason_and_never_retried(env):
    key = env.enqueue()
    env.script().on(key, Outcome.invalid("no email, phone or member number"))
    summary = deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.error_class, row.last_error) == ("dead", "invalid", "no email, phone or member number")
    assert summary["dest"].invalid == 1
    assert env.script().sent_keys() == [key]


def test_rejected_is_dead_at_once_with_code_and_body(env):
    key = env.enqueue()
    env.script().on(key, Outcome.rejected(400, '{"message": "email is invalid"}'))
    deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.error_class, row.attempts) == ("dead", "rejected", 1)
    assert (row.last_status_code, row.last_error) == (400, '{"message": "email is invalid"}')


def test_a_batch_refused_for_one_bad_row_is_split_until_the_bad_row_is_alone(env):
    keys = [env.enqueue(key=f"k{i}") for i in range(4)]

    def refuse_batches_with_k2(batch):
        if any(m.idempotency_key == "k2" for m in batch):
            refused = Outcome.rejected(400, "k2 has a bad field", batch=len(batch) > 1)
            return [refused] * len(batch)
        return None

    env.script().batch_answer = refuse_batches_with_k2
    deliver(env.hub)
    assert env.statuses() == {"k0": "sent", "k1": "sent", "k2": "dead", "k3": "sent"}
    assert env.row("k2").last_error == "k2 has a bad field"
    assert [keys for _, keys, _ in env.script().calls] == [keys, ["k0", "k1"], ["k2", "k3"], ["k2"], ["k3"]]
    assert env.row("k0").attempts == 1


def test_retryable_rows_are_retried_in_the_pass_then_sent(env):
    key = env.enqueue()
    env.script().on(key, Outcome.retryable(503, "busy"), Outcome.retryable(None, "ConnectError"), Outcome.sent("x"))
    summary = deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.attempts, row.error_class, row.last_error) == ("sent", 3, None, None)
    assert summary["dest"].retries == 2


def test_a_retryable_row_left_after_the_pass_waits_for_its_backoff(env):
    key = env.enqueue()
    env.script().on(key, Outcome.retryable(503, "busy"))
    with time_machine.travel(datetime.now(UTC), tick=False):
        before = datetime.now(UTC)
        deliver(env.hub)
        row = env.row(key)
        assert (row.status, row.attempts, row.error_class, row.last_status_code) == ("pending", 3, "retryable", 503)
        assert row.next_attempt_at > before
        deliver(env.hub)  # not due yet: nothing is sent
    assert env.row(key).attempts == 3


def test_exhausted_retries_become_dead(env):
    key = env.enqueue()
    env.script().on(key, Outcome.retryable(500, "boom"))
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        deliver(env.hub)
        clock.shift(timedelta(hours=1))
        summary = deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.error_class, row.attempts) == ("dead", "exhausted", 5)
    assert row.last_error == "5 attempts spent; last: boom"
    assert summary["dest"].dead == 1


def test_an_unknown_outcome_of_an_at_least_once_kind_is_retried_as_uncertain(env):
    key = env.enqueue("contact_upsert")
    env.script().on(key, Outcome.unknown("ReadTimeout"), Outcome.sent("c1"))
    deliver(env.hub)
    assert env.status(key) == "sent"
    assert [uncertain for _, _, uncertain in env.script().calls] == [[False], [True]]


def test_an_unknown_outcome_of_an_at_most_once_kind_is_parked_dead_and_never_resent(env):
    key = env.enqueue("trigger", customer_id=1)
    env.script().on(key, Outcome.unknown("RemoteProtocolError: dropped"))
    deliver(env.hub)
    deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.error_class) == ("dead", "unknown")
    assert row.dispatched_at is not None
    assert env.script().sent_keys() == [key]


def test_the_configured_guarantee_overrides_the_plugins(make_env):
    env = make_env({"dest": {"plugin": "scripted", "delivery": {"guarantee": {"contact_upsert": "at_most_once"}}}})
    key = env.enqueue("contact_upsert")
    env.script().on(key, Outcome.unknown("ReadTimeout"))
    deliver(env.hub)
    assert (env.status(key), env.row(key).error_class) == ("dead", "unknown")


def test_an_exception_escaping_send_is_an_unknown_outcome_for_the_batch(env):
    key = env.enqueue("trigger")
    env.script().on(key, RuntimeError("plugin bug"))
    deliver(env.hub)
    row = env.row(key)
    assert (row.status, row.error_class) == ("dead", "unknown")
    assert "RuntimeError: plugin bug" in row.last_error


def test_a_kind_the_destination_does_not_handle_is_dead_as_invalid(env):
    key = env.enqueue("segment_membership")
    deliver(env.hub)
    assert (env.status(key), env.row(key).error_class) == ("dead", "invalid")
    assert env.script().calls == []


def _paused(env) -> bool:
    with env.hub.engine.connect() as conn:
        return bool(conn.execute(sa.select(DestinationState.__table__.c.paused)).scalar())


def test_auth_pauses_the_destination_and_keeps_its_rows_pending_without_spending_attempts(env):
    keys = [env.enqueue("order", customer_id=i) for i in range(6)]
    env.script().on(keys[0], Outcome.auth(401, "bad api key"))
    summary = deliver(env.hub)
    assert summary["dest"].paused and not summary.ok
    assert "bad api key" in summary["dest"].paused_reason
    assert _paused(env)
    rows = [env.row(k) for k in keys]
    assert {r.status for r in rows} <= {"pending", "sent"}
    assert env.row(keys[0]).attempts == 0 and env.row(keys[0]).error_class == "auth"
    assert all(r.attempts == 0 for r in rows if r.status == "pending")  # batches already in flight may finish


def test_a_paused_destination_stays_paused_while_check_fails_and_resumes_when_it_passes(env):
    key = env.enqueue("order", customer_id=1)
    env.script().on(key, Outcome.auth(401, "bad api key"), Outcome.sent("o1"))
    deliver(env.hub)
    env.script().check_ok = False
    summary = deliver(env.hub)
    assert summary["dest"].paused and len(env.script().calls) == 1
    env.script().check_ok = True
    summary = deliver(env.hub)
    assert summary["dest"].resumed and not summary["dest"].paused
    assert env.status(key) == "sent" and not _paused(env)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _in_flight(env, kind, holder, **columns):
    far = datetime.now(UTC) + timedelta(hours=1)
    return env.enqueue(kind, customer_id=1, status="in_flight", claimed_by=holder, lease_until=far, **columns)


def test_rows_held_by_a_dead_process_are_recovered_per_guarantee(env):
    import socket

    holder = f"{socket.gethostname()}:{_dead_pid()}"
    upsert = _in_flight(env, "contact_upsert", holder)
    trigger_left = _in_flight(env, "trigger", holder, dispatched_at=datetime.now(UTC))
    trigger_not_left = _in_flight(env, "trigger", holder)
    summary = deliver(env.hub)
    assert summary.recovered == {"pending": 2, "dead": 1}
    assert env.status(upsert) == "sent"
    assert env.script().calls[0] == ("contact_upsert", [upsert], [True])
    assert (env.status(trigger_left), env.row(trigger_left).error_class) == ("dead", "unknown")
    assert env.row(trigger_left).last_error == "outcome unknown after a crash; parked for review"
    assert env.status(trigger_not_left) == "sent"
    assert trigger_left not in env.script().sent_keys()


def test_rows_of_a_live_holder_are_left_until_their_lease_expires(env):
    holder = "another-host:1"
    key = _in_flight(env, "contact_upsert", holder)
    deliver(env.hub)
    assert env.status(key) == "in_flight"
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2), tick=False):
        deliver(env.hub)
    assert env.status(key) == "sent"


def test_orders_wait_for_their_customers_contact_upsert(env):
    upsert = env.enqueue("contact_upsert", customer_id=1)
    waiting = env.enqueue("order", customer_id=1)
    free = env.enqueue("order", customer_id=2)
    env.script().on(upsert, Outcome.retryable(503, "busy"), Outcome.retryable(503, "busy"),
                    Outcome.retryable(503, "busy"), Outcome.sent("c1"))  # fmt: skip
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        deliver(env.hub)
        assert (env.status(waiting), env.status(free)) == ("pending", "sent")
        clock.shift(timedelta(hours=1))
        deliver(env.hub)
    assert env.status(waiting) == "sent"
    order = env.script().sent_keys()
    assert order.index(upsert, 3) < order.index(waiting)


def test_orders_of_a_customer_follow_the_upsert_in_the_same_pass(env):
    upsert = env.enqueue("contact_upsert", customer_id=1)
    order = env.enqueue("order", customer_id=1)
    deliver(env.hub)
    assert env.script().sent_keys() == [upsert, order]
    assert env.status(order) == "sent"


def test_a_hanging_destination_does_not_delay_another(make_env):
    fast_config = {"plugin": "scripted", "delivery": {"concurrency": 2}}
    env = make_env({"slow": {"plugin": "scripted"}, "fast": fast_config})
    release = threading.Event()
    env.script("slow").hang = release
    slow = env.enqueue("order", destination="slow", customer_id=1)
    fast = [env.enqueue("order", destination="fast", customer_id=i) for i in range(5)]
    pass_ = threading.Thread(target=deliver, args=(env.hub,))
    pass_.start()
    try:
        deadline = time.monotonic() + 10
        while not all(env.status(k) == "sent" for k in fast):
            assert time.monotonic() < deadline, "the fast destination waited for the slow one"
            time.sleep(0.02)
        assert env.status(slow) != "sent"
    finally:
        release.set()
        pass_.join(timeout=30)
    assert env.status(slow) == "sent"


def test_progress_reports_done_and_total_per_destination(env):
    for _ in range(3):
        env.enqueue("order", customer_id=1)
    seen = []
    deliver(env.hub, progress=lambda name, done, total: seen.append((name, done, total)))
    assert seen[0] == ("dest", 0, 3) and seen[-1] == ("dest", 3, 3)


def test_summary_counts_requests_and_rate(env):
    for i in range(8):
        env.enqueue("contact_upsert", customer_id=i)
    summary = deliver(env.hub)["dest"]
    assert summary.requests == 2  # batches of 4
    assert summary.total_sent == 8 and summary.elapsed > 0 and summary.requests_per_second > 0


def test_a_pass_limited_to_some_kinds_leaves_the_others_pending_for_the_next_pass(env):
    contact = env.enqueue("contact_upsert", customer_id=7)
    trigger = env.enqueue("trigger", customer_id=7)
    order = env.enqueue("order", customer_id=7)
    summary = deliver(env.hub, kinds=("contact_upsert", "trigger"))
    assert env.statuses() == {contact: "sent", trigger: "sent", order: "pending"}
    assert summary["dest"].sent == {"contact_upsert": 1, "trigger": 1}
    deliver(env.hub)
    assert env.statuses()[order] == "sent"


def test_rows_waiting_for_a_contact_are_looked_for_again_only_after_contact_outcomes_are_recorded(env, monkeypatch):
    from hub.delivery import outbox

    claims: list[str] = []
    original = outbox.claim

    def counting_claim(conn, destination, kind, **options):
        claims.append(kind)
        return original(conn, destination, kind, **options)

    monkeypatch.setattr(outbox, "claim", counting_claim)
    contacts = [env.enqueue("contact_upsert", customer_id=i) for i in range(8)]
    triggers = [env.enqueue("trigger", customer_id=i) for i in range(40)]
    summary = deliver(env.hub)["dest"]
    assert set(env.statuses().values()) == {"sent"} and summary.sent == {"contact_upsert": 8, "trigger": 40}
    sent = env.script().sent_keys()
    assert max(sent.index(c) for c in contacts) < min(sent.index(t) for t in triggers)
    # Each claim is a write transaction: forty one-row trigger batches must not make forty more of them.
    assert claims.count("trigger") <= 4
