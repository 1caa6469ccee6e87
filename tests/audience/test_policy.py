"""Contact pressure: each due candidate is sent, held or suppressed by the first rule that applies, logged, and
only a send reaches the outbox (in the same transaction). Time moves by passing ``now``; nothing sleeps.

The hub.yaml here is the Norwegian hardware chain's programme: at most one post-purchase mail per two days
(dropped), none to B2B customers, and no newsletter for two days after a post-purchase mail. The world helper
(also used by test_push.py and test_explain.py) builds candidates the way the triggers step would, with the real
Voyado destination preparing the ``trigger`` messages.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.app import Hub
from hub.audience.policy import (
    DecisionSummary,
    blocked_customers,
    decide,
    due_candidates,
    span,
)
from hub.audience.types import Prepared
from hub.config import HubConfig
from hub.connectors import Destination
from hub.db import make_engine
from hub.models import AudienceCandidate, Consent, ContactLog, Customer, Event, Message
from hub.schema import upgrade

T = datetime(2024, 12, 30, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)

candidate_t: sa.Table = AudienceCandidate.__table__  # type: ignore[attr-defined]
log_t: sa.Table = ContactLog.__table__  # type: ignore[attr-defined]
customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
consent_t: sa.Table = Consent.__table__  # type: ignore[attr-defined]
event_t: sa.Table = Event.__table__  # type: ignore[attr-defined]
message_t: sa.Table = Message.__table__  # type: ignore[attr-defined]

PP_CAP = "one post-purchase per two days"
QUARANTINE = "no newsletter after a post-purchase"
PRESSURE: dict[str, Any] = {
    "message_types": {
        "post_purchase": {"channel": "email", "priority": "triggered"},
        "birthday": {"channel": "email", "priority": "triggered"},
        "newsletter": {"channel": "email", "priority": "campaign"},
        "invoice": {"channel": "email", "priority": "transactional"},
        "sms_offer": {"channel": "sms", "priority": "campaign"},
    },
    "caps": [{"name": PP_CAP, "message_types": ["post_purchase"], "max": 1, "per": "2d", "then": "drop"}],
    "quarantines": [
        {"name": QUARANTINE, "after": ["post_purchase"], "keep_out_of": ["newsletter"], "for": "2d", "then": "drop"}
    ],
    "exclusions": {"b2b": ["post_purchase"]},
}
TRIGGERS: dict[str, Any] = {
    "pp_grill": {
        "on": "order_placed",
        "message_type": "post_purchase",
        "filter": {"product_groups": ["grills"]},
        "to": {"voyado": {"trigger_id": "pp-grill"}},
    },
    "pp_paint": {
        "on": "order_placed",
        "message_type": "post_purchase",
        "where": None,
        "to": {"voyado": {"trigger_id": "pp-paint"}},
    },
    "weekly": {
        "on": "campaign",
        "message_type": "newsletter",
        "segment": "newsletter",
        "schedule": "0 8 * * 5",
        "to": {"voyado": {"trigger_id": "weekly"}},
    },
    "invoice": {"on": "order_placed", "message_type": "invoice", "to": {"voyado": {"trigger_id": "invoice"}}},
    "birthday": {"on": "birthday", "message_type": "birthday", "to": {"voyado": {"trigger_id": "bday"}}},
    "sms": {"on": "birthday", "message_type": "sms_offer", "to": {"voyado": {"trigger_id": "sms"}}},
}
_keys = itertools.count(1)


@dataclass
class World:
    """A hub on a fresh SQLite database with a Voyado destination, and helpers to make customers and candidates
    (as the triggers step would) and to run the decision step at a given ``now``."""

    hub: Hub
    config: HubConfig
    destinations: dict[str, Destination]
    views: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    emails: dict[int, str | None] = field(default_factory=dict)

    def with_pressure(self, **changes: Any) -> World:
        """The same world with ``contact_pressure`` keys replaced (e.g. other caps)."""
        pressure = self.config.contact_pressure.model_validate({**PRESSURE, **changes})
        config = self.config.model_copy(update={"contact_pressure": pressure})
        return World(self.hub, config, self.destinations, self.views, self.emails)

    def customer(
        self,
        *,
        email: str | None = "",
        b2b: bool = False,
        consent: str | None = "opt_in",
        channel: str = "email",
        erased: datetime | None = None,
        **columns: Any,
    ) -> int:
        """A live customer; by default with an e-mail and an e-mail opt-in."""
        with self.hub.engine.begin() as conn:
            customer_id = conn.execute(
                sa.insert(customer_t).values(
                    is_b2b=b2b, erased_at=erased, created_at=T - 400 * DAY, updated_at=T - 400 * DAY, **columns
                )
            ).inserted_primary_key[0]
            address = f"c{customer_id}@example.com" if email == "" else email
            conn.execute(sa.update(customer_t).where(customer_t.c.id == customer_id).values(email=address))
            if consent is not None:
                conn.execute(
                    sa.insert(consent_t).values(
                        customer_id=customer_id, channel=channel, status=consent, source="erp", updated_at=T - DAY
                    )
                )
        self.emails[customer_id] = address
        return int(customer_id)

    def bounce(self, customer_id: int, at: datetime) -> None:
        with self.hub.engine.begin() as conn:
            conn.execute(
                sa.insert(event_t).values(
                    source="esp", external_id=f"b{next(_keys)}", customer_id=customer_id, type="email_bounced", at=at,
                    loaded_at=at,
                )
            )  # fmt: skip

    def candidate(
        self,
        customer_id: int,
        trigger: str,
        fired_at: datetime,
        *,
        due_at: datetime | None = None,
        views: dict[str, dict[str, Any]] | None = None,
    ) -> int:
        """A waiting candidate of ``trigger`` (its message type from hub.yaml), due at ``due_at`` (default: fired)."""
        key = f"{trigger}:{customer_id}:order:{next(_keys)}"
        message_type = self.config.triggers[trigger].message_type
        with self.hub.engine.begin() as conn:
            candidate_id = conn.execute(
                sa.insert(candidate_t).values(
                    key=key,
                    trigger=trigger,
                    message_type=message_type,
                    customer_id=customer_id,
                    facts={},
                    fired_at=fired_at,
                    due_at=due_at or fired_at,
                    status="waiting",
                )
            ).inserted_primary_key[0]
        target = self.config.triggers[trigger].to["voyado"].trigger_id
        keys = {"customer_id": customer_id, "email": self.emails.get(customer_id)}
        default = {"voyado": {"trigger_id": target, "data": {"trigger": trigger, "key": key}, "_hub": keys}}
        self.views[int(candidate_id)] = default if views is None else views
        return int(candidate_id)

    def prepared(self, rows: list[Any]) -> list[Prepared]:
        order = {name: position for position, name in enumerate(self.config.triggers)}
        return [
            Prepared(
                candidate_id=row.id,
                key=row.key,
                trigger=row.trigger,
                message_type=row.message_type,
                customer_id=row.customer_id,
                fired_at=row.fired_at,
                due_at=row.due_at,
                status=row.status,
                order=order[row.trigger],
                branch="default",
                payload={"trigger": row.trigger},
                views=self.views[row.id],
            )
            for row in rows
        ]

    def decide(self, now: datetime, *, limit: int = 1000) -> DecisionSummary:
        """The decision step at ``now``: every due candidate, in one transaction."""
        with self.hub.engine.begin() as conn:
            rows = due_candidates(conn, now, limit=limit)
            return decide(conn, self.config, self.prepared(rows), now, destinations=self.destinations)

    def status(self, candidate_id: int) -> Any:
        with self.hub.engine.connect() as conn:
            return conn.execute(sa.select(candidate_t).where(candidate_t.c.id == candidate_id)).one()

    def log(self, customer_id: int | None = None) -> list[Any]:
        query = sa.select(log_t).order_by(log_t.c.id)
        if customer_id is not None:
            query = query.where(log_t.c.customer_id == customer_id)
        with self.hub.engine.connect() as conn:
            return list(conn.execute(query))

    def messages(self, customer_id: int | None = None, kind: str | None = None) -> list[Any]:
        query = sa.select(message_t).order_by(message_t.c.id)
        if customer_id is not None:
            query = query.where(message_t.c.customer_id == customer_id)
        if kind is not None:
            query = query.where(message_t.c.kind == kind)
        with self.hub.engine.connect() as conn:
            return list(conn.execute(query))

    def sent_types(self, customer_id: int) -> list[str]:
        return [row.message_type for row in self.log(customer_id) if row.decision == "send"]


SEGMENTS: dict[str, Any] = {"newsletter": {"when": 'consent("email")'}}


def make_world(
    base: Path,
    *,
    segments: dict[str, Any] | None = None,
    connectors: dict[str, Any] | None = None,
    plugins: tuple[object, ...] = (),
    url: str | None = None,
    template: Path | None = None,
) -> World:
    """Write hub.yaml (a Voyado connector, the triggers and the contact pressure above, and ``segments``), load it
    with ``plugins`` (which may add connector types for ``connectors``), migrate (a SQLite database starts as a
    copy of ``template``, a migrated empty one: migrating from scratch is most of a test's time)."""
    own = f"sqlite:///{base / 'hub.db'}"
    if template is not None and url in (None, own):
        shutil.copyfile(template, base / "hub.db")
    settings = {"base_url": "http://127.0.0.1:9", "api_key": "key"}
    config = {
        "database": {"url": url or own},
        "connectors": {"voyado": {"plugin": "voyado", "settings": settings}, **(connectors or {})},
        "contact_pressure": PRESSURE,
        "segments": segments or SEGMENTS,
        "triggers": TRIGGERS,
    }
    (base / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
    hub = Hub.load(base / "hub.yaml", project_dir=base, plugins=plugins)
    upgrade(hub.engine)
    destinations = {name: hub.connector(name) for name in hub.destinations()}
    assert all(isinstance(d, Destination) for d in destinations.values())
    return World(hub, hub.config, destinations)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def schema_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite database that each test's world starts as a copy of."""
    path = tmp_path_factory.mktemp("template") / "hub.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def world(tmp_path: Path, schema_template: Path) -> Iterator[World]:
    made = make_world(tmp_path, template=schema_template)
    yield made
    made.hub.close()


@pytest.fixture
def any_world(tmp_path: Path, database_url: str, schema_template: Path) -> Iterator[World]:
    """A world on each dialect (SQLite, and PostgreSQL where it is installed)."""
    made = make_world(tmp_path, url=database_url, template=schema_template)
    yield made
    made.hub.close()


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One database for property tests: each example makes its own customers."""
    made = make_world(tmp_path_factory.mktemp("policy"))
    yield made
    made.hub.close()


# ------------------------------------------------------------------------------------ the hardware programme


def test_several_post_purchase_candidates_in_one_day_send_one_mail(any_world: World) -> None:
    world = any_world
    customer = world.customer()
    first = world.candidate(customer, "pp_grill", T)
    second = world.candidate(customer, "pp_paint", T + timedelta(minutes=5))
    third = world.candidate(customer, "pp_grill", T + timedelta(hours=6))
    world.decide(T + timedelta(minutes=10))
    world.decide(T + timedelta(hours=7))
    assert world.status(first).status == "sent"
    assert (world.status(second).status, world.status(second).rule) == ("suppressed", f"cap:{PP_CAP}")
    assert (world.status(third).status, world.status(third).rule) == ("suppressed", f"cap:{PP_CAP}")
    assert [m.idempotency_key for m in world.messages(customer)] == [f"voyado:trigger:{world.status(first).key}"]


def test_a_post_purchase_is_allowed_again_exactly_two_days_after_the_last(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "pp_grill", T)
    world.decide(T)
    just_before = world.candidate(customer, "pp_grill", T + 2 * DAY - SECOND)
    world.decide(T + 2 * DAY - SECOND)
    at_the_end = world.candidate(customer, "pp_grill", T + 2 * DAY)
    world.decide(T + 2 * DAY)
    assert world.status(just_before).status == "suppressed"
    assert world.status(at_the_end).status == "sent"


@settings(max_examples=25)
@given(offsets=st.lists(st.integers(min_value=0, max_value=7 * 24 * 60), min_size=1, max_size=8))
def test_nobody_gets_two_post_purchase_mails_within_two_days(shared_world: World, offsets: list[int]) -> None:
    """Whatever the order times over a week, the post-purchase sends of one customer are exactly the ones a
    greedy reading of the cap allows: the first, then each one at least two days after the last send."""
    customer = shared_world.customer()
    expected: list[datetime] = []
    for minutes in sorted(offsets):
        at = T + timedelta(minutes=minutes)
        shared_world.candidate(customer, "pp_grill" if minutes % 2 else "pp_paint", at)
        shared_world.decide(at)
        if not expected or at - expected[-1] >= 2 * DAY:
            expected.append(at)
    assert [row.at for row in shared_world.log(customer) if row.decision == "send"] == expected


def test_b2b_customers_get_no_post_purchase_but_still_get_the_newsletter(world: World) -> None:
    business = world.customer(b2b=True)
    post_purchase = world.candidate(business, "pp_grill", T)
    newsletter = world.candidate(business, "weekly", T)
    world.decide(T)
    row = world.status(post_purchase)
    assert (row.status, row.rule) == ("suppressed", "b2b")
    assert row.reason == "B2B customers get no post_purchase (contact_pressure.exclusions.b2b)"
    assert world.status(newsletter).status == "sent"
    assert [m.payload["trigger_id"] for m in world.messages(business)] == ["weekly"]


def test_b2b_all_excludes_every_type_but_transactional(world: World) -> None:
    strict = world.with_pressure(exclusions={"b2b": "all"})
    business = strict.customer(b2b=True)
    newsletter = strict.candidate(business, "weekly", T)
    invoice = strict.candidate(business, "invoice", T)
    strict.decide(T)
    assert strict.status(newsletter).rule == "b2b"
    assert strict.status(invoice).status == "sent"


def test_newsletter_quarantine_after_a_post_purchase_lasts_exactly_two_days(any_world: World) -> None:
    world = any_world
    customer = world.customer()
    world.candidate(customer, "pp_grill", T)
    world.decide(T)
    inside = world.candidate(customer, "weekly", T + 2 * DAY - SECOND)
    world.decide(T + 2 * DAY - SECOND)
    after = world.candidate(customer, "weekly", T + 2 * DAY)
    world.decide(T + 2 * DAY)
    assert (world.status(inside).status, world.status(inside).rule) == (
        "suppressed",
        f"quarantine:{QUARANTINE}",
    )
    assert world.status(after).status == "sent"


def test_a_held_newsletter_is_released_when_the_quarantine_ends(world: World) -> None:
    holding = world.with_pressure(
        quarantines=[{"name": QUARANTINE, "after": ["post_purchase"], "keep_out_of": ["newsletter"], "for": "2d",
                      "then": "hold"}],
        message_types={**PRESSURE["message_types"], "newsletter": {"priority": "campaign", "max_hold": "3d"}},
    )  # fmt: skip
    customer = holding.customer()
    holding.candidate(customer, "pp_grill", T)
    holding.decide(T)
    newsletter = holding.candidate(customer, "weekly", T + DAY)
    holding.decide(T + DAY)
    assert (holding.status(newsletter).status, holding.status(newsletter).hold_until) == ("held", T + 2 * DAY)
    holding.decide(T + 2 * DAY - SECOND)
    assert holding.status(newsletter).status == "held"
    holding.decide(T + 2 * DAY)
    assert holding.status(newsletter).status == "sent"
    assert [row.decision for row in holding.log(customer)] == ["send", "hold", "send"]


def test_the_newsletter_and_a_post_purchase_due_together_send_the_post_purchase_first(world: World) -> None:
    """The triggered post-purchase outranks the campaign, so the newsletter decided after it is quarantined."""
    customer = world.customer()
    newsletter = world.candidate(customer, "weekly", T - timedelta(hours=1))
    post_purchase = world.candidate(customer, "pp_grill", T)
    world.decide(T)
    assert world.status(post_purchase).status == "sent"
    assert world.status(newsletter).rule == f"quarantine:{QUARANTINE}"


# ------------------------------------------------------------------------------------------------ priorities

ONE_A_DAY = [{"name": "one e-mail a day", "channel": "email", "max": 1, "per": "1d", "then": "hold"}]


def test_a_lower_priority_message_is_held_when_a_higher_one_took_the_channel_slot(any_world: World) -> None:
    world = any_world
    capped = world.with_pressure(caps=ONE_A_DAY, quarantines=[])
    customer = capped.customer()
    newsletter = capped.candidate(customer, "weekly", T - timedelta(hours=2))
    birthday = capped.candidate(customer, "birthday", T)
    capped.decide(T)
    held = capped.status(newsletter)
    assert capped.status(birthday).status == "sent"
    assert (held.status, held.rule, held.hold_until) == ("held", "cap:one e-mail a day", T + DAY)
    assert held.reason.endswith("a higher-priority birthday took the slot")
    capped.decide(T + DAY)
    assert capped.status(newsletter).status == "sent"


def test_with_drop_the_lower_priority_message_is_suppressed(world: World) -> None:
    capped = world.with_pressure(caps=[{**ONE_A_DAY[0], "then": "drop"}], quarantines=[])
    customer = capped.customer()
    newsletter = capped.candidate(customer, "weekly", T)
    capped.candidate(customer, "pp_grill", T)
    capped.decide(T)
    assert (capped.status(newsletter).status, capped.status(newsletter).rule) == ("suppressed", "cap:one e-mail a day")


def test_transactional_messages_are_sent_over_a_full_cap_and_take_the_slot(world: World) -> None:
    capped = world.with_pressure(caps=ONE_A_DAY, quarantines=[])
    customer = capped.customer(consent=None)
    invoice = capped.candidate(customer, "invoice", T)
    capped.decide(T)
    second_invoice = capped.candidate(customer, "invoice", T + SECOND)
    birthday = capped.candidate(customer, "birthday", T + SECOND)
    capped.decide(T + SECOND)
    assert [capped.status(c).status for c in (invoice, second_invoice)] == ["sent", "sent"]
    assert capped.status(invoice).rule == "transactional"
    # no consent would suppress the birthday mail anyway: give it consent and try again
    consenting = capped.customer()
    capped.candidate(consenting, "invoice", T)
    late = capped.candidate(consenting, "birthday", T + SECOND)
    capped.decide(T + SECOND)
    assert capped.status(birthday).rule == "no_consent"
    assert capped.status(late).status == "held"
    assert "a higher-priority invoice took the slot" in capped.status(late).reason


def test_a_cap_on_a_channel_does_not_count_other_channels(world: World) -> None:
    capped = world.with_pressure(caps=ONE_A_DAY, quarantines=[])
    customer = capped.customer()
    with capped.hub.engine.begin() as conn:
        conn.execute(
            sa.insert(consent_t).values(
                customer_id=customer, channel="sms", status="opt_in", source="erp", updated_at=T
            )
        )
    sms = capped.candidate(customer, "sms", T)
    mail = capped.candidate(customer, "birthday", T)
    capped.decide(T)
    assert [capped.status(c).status for c in (sms, mail)] == ["sent", "sent"]


# ------------------------------------------------------------------------------------------------ exclusions


def test_no_consent_unsubscribed_and_bounced_customers_are_suppressed(world: World) -> None:
    none = world.customer(consent=None)
    unsubscribed = world.customer(consent="opt_out")
    bounced = world.customer()
    world.bounce(bounced, T - DAY)
    ids = {c: world.candidate(c, "birthday", T) for c in (none, unsubscribed, bounced)}
    world.decide(T)
    rules = {c: (world.status(i).rule, world.status(i).reason) for c, i in ids.items()}
    assert rules[none] == ("no_consent", "no e-mail consent")
    assert rules[unsubscribed] == ("unsubscribed", "the customer unsubscribed from e-mail")
    assert rules[bounced][0] == "bounced"
    assert world.messages() == []


def test_consent_is_read_for_the_message_types_channel(world: World) -> None:
    customer = world.customer()  # e-mail opt-in only
    sms = world.candidate(customer, "sms", T)
    world.decide(T)
    assert (world.status(sms).rule, world.status(sms).reason) == ("no_consent", "no SMS consent")


def test_erased_customers_get_nothing_not_even_transactional(world: World) -> None:
    customer = world.customer(erased=T - DAY)
    invoice = world.candidate(customer, "invoice", T)
    world.decide(T)
    assert (world.status(invoice).status, world.status(invoice).rule) == ("suppressed", "erased")
    assert world.messages() == []


def test_transactional_messages_ignore_consent_b2b_and_bounces(world: World) -> None:
    customer = world.customer(b2b=True, consent="opt_out")
    world.bounce(customer, T - DAY)
    invoice = world.candidate(customer, "invoice", T)
    world.decide(T)
    assert world.status(invoice).status == "sent"


def test_a_candidate_that_could_not_be_prepared_is_suppressed_with_the_reason(world: World) -> None:
    customer = world.customer()
    candidate = world.candidate(customer, "pp_grill", T)
    with world.hub.engine.begin() as conn:
        rows = due_candidates(conn, T, limit=10)
        (prepared,) = world.prepared(rows)
        prepared.error = "order 17 is gone"
        decide(conn, world.config, [prepared], T, destinations=world.destinations)
    row = world.status(candidate)
    assert (row.status, row.rule, row.reason) == (
        "suppressed",
        "prepare_error",
        "could not be prepared: order 17 is gone",
    )


# ------------------------------------------------------------------------------------------------- max_hold


def test_a_candidate_due_longer_ago_than_max_hold_expires(world: World) -> None:
    customer = world.customer()
    late = world.candidate(customer, "birthday", T - 4 * DAY)
    world.decide(T)
    assert (world.status(late).status, world.status(late).rule) == ("suppressed", "expired")


def test_a_hold_that_would_outlast_max_hold_suppresses_at_once(world: World) -> None:
    long_cap = world.with_pressure(
        caps=[{"name": "weekly", "message_types": ["birthday"], "max": 1, "per": "7d", "then": "hold"}]
    )
    customer = long_cap.customer()
    long_cap.candidate(customer, "birthday", T)
    long_cap.decide(T)
    second = long_cap.candidate(customer, "birthday", T + DAY)
    long_cap.decide(T + DAY)
    row = long_cap.status(second)
    assert (row.status, row.rule, row.hold_until) == ("suppressed", "cap:weekly", None)
    assert "max_hold of 3 days" in row.reason


# ----------------------------------------------------------------------------------- the log and the outbox


def test_every_decision_is_logged_and_the_candidate_updated(world: World) -> None:
    customer = world.customer()
    candidate = world.candidate(customer, "pp_grill", T)
    world.decide(T + timedelta(minutes=1))
    (log,) = world.log(customer)
    row = world.status(candidate)
    assert (log.candidate_id, log.trigger, log.message_type, log.channel, log.priority) == (
        candidate, "pp_grill", "post_purchase", "email", "triggered",
    )  # fmt: skip
    assert (log.decision, log.rule, log.destinations, log.at) == ("send", "send", ["voyado"], T + timedelta(minutes=1))
    assert (row.status, row.branch, row.payload, row.decided_at) == (
        "sent", "default", {"trigger": "pp_grill"}, T + timedelta(minutes=1),
    )  # fmt: skip


def test_only_a_send_reaches_the_outbox_prepared_by_the_destination(world: World) -> None:
    customer = world.customer()
    sent = world.candidate(customer, "pp_grill", T)
    world.candidate(customer, "pp_paint", T)
    world.decide(T)
    (message,) = world.messages()
    assert (message.kind, message.destination, message.customer_id, message.status) == (
        "trigger", "voyado", customer, "pending",
    )  # fmt: skip
    assert message.idempotency_key == f"voyado:trigger:{world.status(sent).key}"
    assert message.payload["trigger_id"] == "pp-grill"
    assert message.payload["match"] == {"key": "email", "value": world.emails[customer]}


def test_the_decision_and_its_outbox_row_commit_or_roll_back_together(world: World) -> None:
    customer = world.customer()
    candidate = world.candidate(customer, "pp_grill", T)
    with pytest.raises(RuntimeError), world.hub.engine.begin() as conn:
        rows = due_candidates(conn, T, limit=10)
        decide(conn, world.config, world.prepared(rows), T, destinations=world.destinations)
        raise RuntimeError("crash after deciding")
    assert (world.status(candidate).status, world.log(), world.messages()) == ("waiting", [], [])


def test_deciding_the_same_batch_twice_enqueues_once(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "birthday", T)
    with world.hub.engine.begin() as conn:
        prepared = world.prepared(due_candidates(conn, T, limit=10))
    for _ in range(2):
        with world.hub.engine.begin() as conn:
            summary = decide(conn, world.config, prepared, T, destinations=world.destinations)
    assert (summary.skipped, len(world.messages()), len(world.log())) == (1, 1, 1)


def test_a_redecided_send_never_enqueues_twice(world: World) -> None:
    customer = world.customer()
    candidate = world.candidate(customer, "birthday", T)
    world.decide(T)
    with world.hub.engine.begin() as conn:
        conn.execute(sa.update(candidate_t).where(candidate_t.c.id == candidate).values(status="waiting"))
    summary = world.decide(T + SECOND)
    assert summary.by_decision["send"] == 1
    assert summary.enqueued == 0
    assert len(world.messages()) == 1


def test_a_payload_the_destination_refuses_is_a_dead_letter(world: World) -> None:
    customer = world.customer(email=None)  # Voyado matches contacts by e-mail
    world.candidate(customer, "birthday", T)
    summary = world.decide(T)
    (message,) = world.messages()
    assert (summary.by_decision["send"], summary.enqueued, summary.dead) == (1, 0, 1)
    assert (message.status, message.error_class) == ("dead", "invalid")
    assert "has no email" in message.last_error


def test_the_summary_counts_decisions_and_rules(world: World) -> None:
    customer = world.customer()
    world.candidate(customer, "pp_grill", T)
    world.candidate(customer, "pp_paint", T)
    world.candidate(world.customer(b2b=True), "pp_grill", T)
    summary = world.decide(T)
    assert summary.by_decision == {"send": 1, "suppress": 2}
    assert summary.by_rule == {("send", "send"): 1, ("suppress", f"cap:{PP_CAP}"): 1, ("suppress", "b2b"): 1}


def test_decide_reads_each_table_once_per_batch(world: World) -> None:
    """The statements a batch runs do not grow with its size (sends aside: one outbox insert each)."""

    def selects(customers: int) -> int:
        for _ in range(customers):
            customer = world.customer()
            world.bounce(customer, T - DAY)  # suppressed: no sends, no outbox rows
            world.candidate(customer, "pp_grill", T)
            world.candidate(customer, "weekly", T)
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sa.event.listen(world.hub.engine, "before_cursor_execute", count)
        try:
            world.decide(T)
        finally:
            sa.event.remove(world.hub.engine, "before_cursor_execute", count)
        return len(statements)

    assert selects(2) == selects(40)


# --------------------------------------------------------------------------------------------- due candidates


def test_due_candidates_are_the_waiting_due_and_the_held_released(world: World) -> None:
    customer = world.customer()
    due = world.candidate(customer, "birthday", T)
    later = world.candidate(customer, "birthday", T, due_at=T + DAY)
    held = world.candidate(customer, "weekly", T - DAY)
    still_held = world.candidate(customer, "weekly", T - DAY)
    with world.hub.engine.begin() as conn:
        conn.execute(sa.update(candidate_t).where(candidate_t.c.id == held).values(status="held", hold_until=T))
        conn.execute(
            sa.update(candidate_t).where(candidate_t.c.id == still_held).values(status="held", hold_until=T + SECOND)
        )
        assert {row.id for row in due_candidates(conn, T, limit=10)} == {due, held}
    assert later not in {due, held}


def test_due_candidates_finish_the_last_customer_of_a_batch(world: World) -> None:
    first, second, third = world.customer(), world.customer(), world.customer()
    for customer in (first, second, second, second, third):
        world.candidate(customer, "birthday", T)
    with world.hub.engine.begin() as conn:
        batch = due_candidates(conn, T, limit=2)
        rest = due_candidates(conn, T, limit=2, after_customer=batch[-1].customer_id)
    assert [row.customer_id for row in batch] == [first, second, second, second]
    assert [row.customer_id for row in rest] == [third]


# ------------------------------------------------------------------------------------------ blocked customers


def test_blocked_customers_are_the_ones_decide_would_suppress(any_world: World) -> None:
    world = any_world
    fine = world.customer()
    business = world.customer(b2b=True)
    no_consent = world.customer(consent=None)
    erased = world.customer(erased=T - DAY)
    bounced = world.customer()
    world.bounce(bounced, T - DAY)
    quarantined = world.customer()
    world.candidate(quarantined, "pp_grill", T)
    world.decide(T)
    pressure = world.config.contact_pressure
    with world.hub.engine.connect() as conn:

        def blocked(message_type: str, now: datetime) -> set[int]:
            return set(conn.execute(blocked_customers(pressure, message_type, now)).scalars())

        everyone = {fine, business, no_consent, erased, bounced, quarantined}
        assert blocked("newsletter", T + SECOND) & everyone == {no_consent, erased, bounced, quarantined}
        assert blocked("newsletter", T + 2 * DAY) & everyone == {no_consent, erased, bounced}
        assert blocked("post_purchase", T) & everyone == {business, no_consent, erased, bounced}
        assert blocked("invoice", T) & everyone == {erased}


def test_span_words() -> None:
    assert [span(timedelta(days=2)), span(timedelta(hours=36)), span(timedelta(minutes=1))] == [
        "2 days", "36 hours", "1 minute",
    ]  # fmt: skip
