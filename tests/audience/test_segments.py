"""Segment evaluation: membership diffs, changes, state, dependency order, pruning, sizes and preview."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hub.audience.segments import (
    SegmentCycleError,
    SegmentInfo,
    SegmentResult,
    evaluate_segments,
    evaluation_order,
    preview,
    prune_segments,
    segment_sizes,
)
from hub.config._audience import SegmentConfig
from hub.db import make_engine
from hub.models import Customer, CustomerAttributes, SegmentChange, SegmentMembership, SegmentState
from hub.schema import upgrade

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


def table(model: Any) -> sa.Table:
    return model.__table__  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('segments') / 'hub.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:
        transaction = conn.begin()
        yield conn
        transaction.rollback()


def add_customer(conn: sa.Connection, customer_id: int, *, tier: str | None = None, **customer: Any) -> None:
    conn.execute(
        table(Customer)
        .insert()
        .values(id=customer_id, is_b2b=False, source_rank=0, created_at=NOW, updated_at=NOW, **customer)
    )
    conn.execute(
        table(CustomerAttributes)
        .insert()
        .values(
            customer_id=customer_id,
            tier=tier,
            orders_window=0,
            orders_lifetime=0,
            monetary_window=0.0,
            monetary_lifetime=0.0,
            returns_value=0.0,
            clv_historical=0.0,
            product_groups=[],
            extra={},
            computed_at=NOW,
        )
    )


def set_tier(conn: sa.Connection, customer_id: int, tier: str | None) -> None:
    attributes = table(CustomerAttributes)
    conn.execute(attributes.update().where(attributes.c.customer_id == customer_id).values(tier=tier))


def segments(**when: str) -> dict[str, SegmentConfig]:
    return {name: SegmentConfig(name=name, when=text) for name, text in when.items()}


def membership(conn: sa.Connection, segment: str) -> dict[int, datetime]:
    rows = table(SegmentMembership)
    return dict(conn.execute(sa.select(rows.c.customer_id, rows.c.since).where(rows.c.segment == segment)).all())


def changes(conn: sa.Connection) -> list[tuple[str, int, str, datetime]]:
    rows = table(SegmentChange)
    query = sa.select(rows.c.segment, rows.c.customer_id, rows.c.change, rows.c.at).order_by(rows.c.id)
    return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def test_first_evaluation_enters_every_member(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    add_customer(conn, 2, tier="B")
    add_customer(conn, 3, tier="A")
    result = evaluate_segments(conn, segments(tier_a='tier == "A"'), NOW)
    assert result == {"tier_a": SegmentResult(members=2, entered=2, left=0)}
    assert membership(conn, "tier_a") == {1: NOW, 3: NOW}
    assert changes(conn) == [("tier_a", 1, "entered", NOW), ("tier_a", 3, "entered", NOW)]


def test_reevaluating_unchanged_data_changes_nothing(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    config = segments(tier_a='tier == "A"')
    evaluate_segments(conn, config, NOW)
    result = evaluate_segments(conn, config, LATER)
    assert result["tier_a"] == SegmentResult(members=1, entered=0, left=0)
    assert membership(conn, "tier_a") == {1: NOW}
    assert len(changes(conn)) == 1


def test_members_who_stop_matching_leave_and_new_ones_enter(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    add_customer(conn, 2, tier="B")
    config = segments(tier_a='tier == "A"')
    evaluate_segments(conn, config, NOW)
    set_tier(conn, 1, "B")
    set_tier(conn, 2, "A")
    result = evaluate_segments(conn, config, LATER)
    assert result["tier_a"] == SegmentResult(members=1, entered=1, left=1)
    assert membership(conn, "tier_a") == {2: LATER}
    assert changes(conn)[1:] == [("tier_a", 2, "entered", LATER), ("tier_a", 1, "left", LATER)]


def test_a_merged_away_customer_leaves(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    add_customer(conn, 2, tier="A")
    config = segments(tier_a='tier == "A"')
    evaluate_segments(conn, config, NOW)
    conn.execute(table(Customer).update().where(table(Customer).c.id == 2).values(merged_into=1))
    assert evaluate_segments(conn, config, LATER)["tier_a"] == SegmentResult(members=1, entered=0, left=1)


def test_state_keeps_the_last_evaluation(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    config = segments(tier_a='tier == "A"')
    evaluate_segments(conn, config, NOW)
    evaluate_segments(conn, config, LATER)
    assert segment_sizes(conn) == [SegmentInfo("tier_a", members=1, entered=0, left=0, evaluated_at=LATER)]
    state = table(SegmentState)
    first_hash = conn.execute(sa.select(state.c.definition_hash)).scalar_one()
    evaluate_segments(conn, segments(tier_a='tier == "B"'), LATER)
    assert conn.execute(sa.select(state.c.definition_hash)).scalar_one() != first_hash


def test_a_segment_using_another_is_evaluated_after_it(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A", email="a@example.com")
    add_customer(conn, 2, tier="A")
    # Declared before the segment it reads: the order of evaluation follows in_segment, not the file.
    config = segments(reachable_a='in_segment("tier_a") and has_email', tier_a='tier == "A"')
    assert evaluation_order(config) == ["tier_a", "reachable_a"]
    result = evaluate_segments(conn, config, NOW)
    assert list(result) == ["tier_a", "reachable_a"]
    assert membership(conn, "reachable_a") == {1: NOW}


def test_a_cycle_of_in_segment_is_an_error(conn: sa.Connection) -> None:
    config = segments(a='in_segment("b")', b='in_segment("c") or tier == "A"', c='in_segment("a")')
    with pytest.raises(SegmentCycleError, match=r"circle through in_segment\(\): a -> b -> c -> a"):
        evaluate_segments(conn, config, NOW)


def test_names_evaluates_only_those_segments(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    result = evaluate_segments(conn, segments(tier_a='tier == "A"', tier_b='tier == "B"'), NOW, names=["tier_b"])
    assert result == {"tier_b": SegmentResult(members=0, entered=0, left=0)}
    assert membership(conn, "tier_a") == {}


def test_evaluation_can_run_twice_in_one_transaction(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    evaluate_segments(conn, segments(tier_a='tier == "A"'), NOW)
    assert evaluate_segments(conn, segments(tier_a='tier == "A"'), NOW)["tier_a"].members == 1


def test_pruning_a_removed_segment_makes_its_members_leave(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A")
    add_customer(conn, 2, tier="B")
    evaluate_segments(conn, segments(tier_a='tier == "A"', tier_b='tier == "B"'), NOW)
    assert prune_segments(conn, keep={"tier_b"}, now=LATER) == {"tier_a": 1}
    assert membership(conn, "tier_a") == {}
    assert changes(conn)[-1] == ("tier_a", 1, "left", LATER)
    assert [info.name for info in segment_sizes(conn)] == ["tier_b"]
    assert prune_segments(conn, keep={"tier_b"}, now=LATER) == {}


def test_preview_shows_members_with_key_attributes(conn: sa.Connection) -> None:
    add_customer(conn, 1, tier="A", first_name="Kari", email="kari@example.com")
    add_customer(conn, 2, tier="B")
    evaluate_segments(conn, segments(tier_a='tier == "A"'), NOW)
    rows = preview(conn, "tier_a", now=LATER)
    assert rows == [
        {
            "customer_id": 1,
            "since": NOW,
            "first_name": "Kari",
            "last_name": None,
            "email": "kari@example.com",
            "tier": "A",
            "rfm_segment": None,
            "orders_lifetime": 0,
            "monetary_lifetime": 0.0,
            "last_order_at": None,
            "days_since_last_order": None,
        }
    ]


def test_evaluation_runs_a_fixed_number_of_statements_whatever_the_members(conn: sa.Connection) -> None:
    for customer_id in range(1, 201):
        add_customer(conn, customer_id, tier="A" if customer_id % 2 else "B")
    statements: list[str] = []
    sa.event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
    result = evaluate_segments(conn, segments(tier_a='tier == "A"'), NOW)
    assert result["tier_a"].entered == 100
    assert len(statements) <= 12


def test_evaluation_on_each_dialect(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    config = segments(tier_a='tier == "A"', reachable_a='in_segment("tier_a") and has_email')
    try:
        with engine.begin() as conn:
            add_customer(conn, 1, tier="A", email="a@example.com")
            add_customer(conn, 2, tier="B")
            first = evaluate_segments(conn, config, NOW)
        with engine.begin() as conn:
            set_tier(conn, 2, "A")
            second = evaluate_segments(conn, config, LATER)
            third = evaluate_segments(conn, config, LATER)
            members = membership(conn, "tier_a")
    finally:
        engine.dispose()
    assert first == {"tier_a": SegmentResult(1, 1, 0), "reachable_a": SegmentResult(1, 1, 0)}
    assert second == {"tier_a": SegmentResult(2, 1, 0), "reachable_a": SegmentResult(1, 0, 0)}
    assert third == {"tier_a": SegmentResult(2, 0, 0), "reachable_a": SegmentResult(1, 0, 0)}
    assert members == {1: NOW, 2: LATER}
