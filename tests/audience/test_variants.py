"""A/B/n variants: a stable hash into the weights, stored so a customer never changes arm."""

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from hub.audience.variants import assign_variants, pick_variant
from hub.db import make_engine
from hub.models import VariantAssignment
from hub.schema import upgrade

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
assignment_t: sa.Table = VariantAssignment.__table__  # type: ignore[attr-defined]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@given(st.text(max_size=10), st.integers(1, 10**9))
def test_the_same_customer_always_gets_the_same_variant(experiment: str, customer_id: int) -> None:
    weights = {"a": 1, "b": 2, "c": 3}
    assert pick_variant(experiment, customer_id, weights) == pick_variant(experiment, customer_id, dict(weights))


def test_variant_order_in_the_config_does_not_move_anyone() -> None:
    forward, backward = {"a": 1, "b": 1}, {"b": 1, "a": 1}
    assert all(pick_variant("x", c, forward) == pick_variant("x", c, backward) for c in range(500))


def test_variants_split_by_their_weights() -> None:
    counts = Counter(pick_variant("pp_grill", c, {"a": 1, "b": 3}) for c in range(20_000))
    assert counts["b"] / 20_000 == pytest.approx(0.75, abs=0.02)


def test_experiments_split_independently() -> None:
    same = sum(
        pick_variant("one", c, {"a": 1, "b": 1}) == pick_variant("two", c, {"a": 1, "b": 1}) for c in range(4000)
    )
    assert same / 4000 == pytest.approx(0.5, abs=0.05)


def test_assignments_are_stored(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        got = assign_variants(conn, "pp", [1, 2, 3], {"a": 1, "b": 1}, NOW)
        stored = dict(conn.execute(sa.select(assignment_t.c.customer_id, assignment_t.c.variant)).all())
    assert got == stored == {c: pick_variant("pp", c, {"a": 1, "b": 1}) for c in (1, 2, 3)}


def test_a_stored_assignment_wins_when_the_weights_change(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        first = assign_variants(conn, "pp", range(1, 50), {"a": 1, "b": 1}, NOW)
        later = assign_variants(conn, "pp", range(1, 50), {"a": 99, "b": 1}, NOW + timedelta(days=1))
        at = set(conn.execute(sa.select(assignment_t.c.assigned_at)).scalars())
    assert later == first
    assert at == {NOW}


def test_a_removed_variant_is_drawn_again(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        first = assign_variants(conn, "pp", range(1, 50), {"a": 1, "b": 1}, NOW)
        later = assign_variants(conn, "pp", range(1, 50), {"a": 1}, NOW)
        stored = set(conn.execute(sa.select(assignment_t.c.variant)).scalars())
    assert "b" in first.values()
    assert set(later.values()) == stored == {"a"}
