"""Segment push: each destination a segment is pushed to gets one message per customer who entered or left the
effective membership (the segment minus the customers its message type's exclusions and quarantines block).

``lists`` is a tiny destination that takes ``segment_membership`` messages (``prepare`` returns the view, and
refuses a customer without an e-mail); Voyado takes none, so a push to it is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from hub.audience.push import push_segments
from hub.connectors import ClientOptions, Destination, KindSpec, Outgoing
from hub.delivery.outcomes import InvalidMessage, Outcome
from hub.models import SegmentMembership, SegmentPush
from hub.plugins import hookimpl
from tests.audience.test_policy import DAY, SECOND, T, World, make_world, schema_template  # noqa: F401  # the fixture

member_t: sa.Table = SegmentMembership.__table__  # type: ignore[attr-defined]
push_t: sa.Table = SegmentPush.__table__  # type: ignore[attr-defined]


class Lists(Destination):
    """An ESP's list API: takes segment memberships only."""

    type = "lists"
    kinds: ClassVar[dict[str, KindSpec]] = {"segment_membership": KindSpec(batch_size=100)}

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url="http://127.0.0.1:9")

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        if not view["_hub"].get("email"):
            raise InvalidMessage("a list member needs an e-mail")
        return view

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        return [Outcome.sent() for _ in batch]


class ListsPlugin:
    @hookimpl
    def hub_connector_types(self) -> list[type[Destination]]:
        return [Lists]


SEGMENTS: dict[str, Any] = {
    "newsletter": {"when": 'consent("email")', "push": ["lists"], "message_type": "newsletter"},
    "everyone": {"when": "True", "push": ["lists", "voyado"]},
}


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    template = request.getfixturevalue("schema_template")
    lists = {"lists": {"plugin": "lists"}}
    made = make_world(tmp_path, segments=SEGMENTS, connectors=lists, plugins=(ListsPlugin(),), template=template)
    yield made
    made.hub.close()


@pytest.fixture
def any_world(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[World]:
    """The world on each dialect (SQLite, and PostgreSQL where it is installed)."""
    template = request.getfixturevalue("schema_template")
    lists = {"lists": {"plugin": "lists"}}
    made = make_world(
        tmp_path, segments=SEGMENTS, connectors=lists, plugins=(ListsPlugin(),), url=database_url, template=template
    )
    yield made
    made.hub.close()


def join(world: World, segment: str, *customers: int) -> None:
    """Make customers members, as segment evaluation would."""
    with world.hub.engine.begin() as conn:
        conn.execute(
            sa.insert(member_t), [{"segment": segment, "customer_id": c, "since": T - 10 * DAY} for c in customers]
        )


def leave(world: World, segment: str, customer: int) -> None:
    with world.hub.engine.begin() as conn:
        conn.execute(sa.delete(member_t).where(member_t.c.segment == segment, member_t.c.customer_id == customer))


def push(world: World, now: Any) -> dict[str, dict[str, int]]:
    with world.hub.engine.begin() as conn:
        return push_segments(conn, world.config, now, destinations=world.destinations)


def pushed(world: World, segment: str = "newsletter") -> set[int]:
    with world.hub.engine.connect() as conn:
        query = sa.select(push_t.c.customer_id).where(push_t.c.destination == "lists", push_t.c.segment == segment)
        return set(conn.execute(query).scalars())


def changes(world: World, customer: int, segment: str = "newsletter") -> list[tuple[str, str]]:
    return [
        (m.payload["change"], m.idempotency_key)
        for m in world.messages(customer, kind="segment_membership")
        if m.payload["segment"] == segment
    ]


def test_members_who_enter_and_leave_become_outbox_messages(world: World) -> None:
    stays, goes = world.customer(), world.customer()
    join(world, "newsletter", stays, goes)
    assert push(world, T)["newsletter"] == {"entered": 2, "left": 0, "skipped": 0}
    leave(world, "newsletter", goes)
    assert push(world, T + DAY)["newsletter"] == {"entered": 0, "left": 1, "skipped": 0}
    assert pushed(world) == {stays}
    (entered,) = world.messages(stays, kind="segment_membership")
    assert entered.destination == "lists"
    assert entered.idempotency_key == f"lists:segment_membership:newsletter:{stays}:entered:{T.isoformat()}"
    assert entered.payload == {
        "segment": "newsletter",
        "change": "entered",
        "_hub": {
            "customer_id": stays,
            "email": world.emails[stays],
            "phone": None,
            "member_no": None,
            "external_ids": {},
        },
    }
    assert [change for change, _ in changes(world, goes)] == ["entered", "left"]


def test_pushing_again_without_changes_enqueues_nothing(world: World) -> None:
    join(world, "newsletter", world.customer(), world.customer())
    push(world, T)
    before = len(world.messages())
    assert push(world, T + DAY)["newsletter"] == {"entered": 0, "left": 0, "skipped": 0}
    assert len(world.messages()) == before


def test_a_quarantined_customer_leaves_the_pushed_newsletter_and_comes_back_after_two_days(any_world: World) -> None:
    world = any_world
    customer = world.customer()
    join(world, "newsletter", customer)
    push(world, T - DAY)
    world.candidate(customer, "pp_grill", T)
    world.decide(T)
    assert world.sent_types(customer) == ["post_purchase"]
    push(world, T + SECOND)
    assert pushed(world) == set()
    push(world, T + 2 * DAY - SECOND)
    assert pushed(world) == set()
    push(world, T + 2 * DAY)
    assert pushed(world) == {customer}
    stamps = [
        (change, key.rsplit(":entered:", 1)[-1].rsplit(":left:", 1)[-1]) for change, key in changes(world, customer)
    ]
    assert stamps == [
        ("entered", (T - DAY).isoformat()),
        ("left", (T + SECOND).isoformat()),
        ("entered", (T + 2 * DAY).isoformat()),
    ]


def test_the_effective_membership_leaves_out_blocked_customers(world: World) -> None:
    fine = world.customer()
    business = world.customer(b2b=True)  # B2B is excluded from post_purchase only: still gets the newsletter
    unsubscribed = world.customer(consent="opt_out")
    erased = world.customer(erased=T - DAY)
    join(world, "newsletter", fine, business, unsubscribed, erased)
    push(world, T)
    assert pushed(world) == {fine, business}


def test_a_segment_without_message_type_pushes_every_member(world: World) -> None:
    customers = [world.customer(), world.customer(consent=None)]
    join(world, "everyone", *customers)
    push(world, T)
    assert pushed(world, "everyone") == set(customers)


def test_a_destination_that_takes_no_segment_membership_is_skipped_and_counted(world: World) -> None:
    join(world, "everyone", world.customer())
    assert push(world, T)["everyone"] == {"entered": 1, "left": 0, "skipped": 1}
    assert {m.destination for m in world.messages()} == {"lists"}


def test_a_member_the_destination_refuses_is_a_dead_letter(world: World) -> None:
    customer = world.customer(email=None)
    join(world, "everyone", customer)
    push(world, T)
    (message,) = world.messages(customer)
    assert (message.status, message.error_class, message.last_error) == (
        "dead",
        "invalid",
        "a list member needs an e-mail",
    )
    assert pushed(world, "everyone") == {customer}


def test_a_segment_no_longer_pushed_is_taken_back(world: World) -> None:
    customer = world.customer()
    join(world, "newsletter", customer)
    push(world, T)
    unpushed = {
        **world.config.segments,
        "newsletter": world.config.segments["newsletter"].model_copy(update={"push": []}),
    }
    world.config = world.config.model_copy(update={"segments": unpushed})
    assert push(world, T + DAY)["newsletter"] == {"entered": 0, "left": 1, "skipped": 0}
    assert pushed(world) == set()


def test_push_batches_follow_batch_size(world: World) -> None:
    world.config = world.config.model_copy(update={"batch_size": 3})
    customers = [world.customer() for _ in range(7)]
    join(world, "newsletter", *customers)
    assert push(world, T)["newsletter"]["entered"] == 7
    assert pushed(world) == set(customers)
    assert push(world, T + timedelta(hours=1))["newsletter"]["entered"] == 0
