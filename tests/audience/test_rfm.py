"""The RFM grid, its SQL twin, quintile scores and value tiers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from hub.audience.rfm import (
    GRID,
    SEGMENTS,
    assign_tiers,
    fm_score,
    quintiles,
    rfm_segment,
    score_rfm,
    segment_sql,
    segments,
    tiers,
)
from hub.config._audience import TierConfig
from hub.db import make_engine
from hub.models import CustomerAttributes
from hub.schema import upgrade

NOW = datetime(2025, 6, 1, tzinfo=UTC)
attributes_t: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def add_rows(conn: sa.Connection, rows: list[dict]) -> None:
    defaults = {
        "product_groups": [],
        "extra": {},
        "computed_at": NOW,
        "last_order_at": None,
        "orders_lifetime": 0,
        "monetary_lifetime": 0.0,
    }
    conn.execute(sa.insert(attributes_t), [{**defaults, **row} for row in rows])


def column(conn: sa.Connection, name: str) -> dict[int, object]:
    return dict(conn.execute(sa.select(attributes_t.c.customer_id, attributes_t.c[name])).all())


def test_the_grid_names_every_cell_with_a_documented_segment():
    assert sorted(GRID) == [(r, fm) for r in range(1, 6) for fm in range(1, 6)]
    assert set(GRID.values()) == set(SEGMENTS)
    assert GRID[(5, 5)] == "champions" and GRID[(1, 1)] == "lost" and GRID[(1, 5)] == "cannot_lose"


def test_fm_is_the_mean_of_f_and_m_rounded_half_up():
    assert [fm_score(1, 1), fm_score(1, 2), fm_score(2, 3), fm_score(5, 4), fm_score(5, 5)] == [1, 2, 3, 5, 5]
    assert rfm_segment(None, 3, 3) is None


def test_the_sql_segment_equals_the_python_one_for_every_score(engine):
    cells = [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]
    values = sa.union_all(
        *(sa.select(sa.literal(r).label("r"), sa.literal(f).label("f"), sa.literal(m).label("m")) for r, f, m in cells)
    ).subquery("scores")
    with engine.connect() as conn:
        got = conn.execute(
            sa.select(values.c.r, values.c.f, values.c.m, segment_sql(values.c.r, values.c.f, values.c.m))
        )
        assert {(r, f, m): name for r, f, m, name in got} == {cell: rfm_segment(*cell) for cell in cells}


@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=23))
def test_scores_are_quintiles_with_ties_split_by_customer_id(orders):
    # One engine per example would be slow: an in-memory SQLite with just the table is enough here.
    engine = sa.create_engine("sqlite://")
    attributes_t.create(engine)
    with engine.begin() as conn:
        add_rows(
            conn,
            [
                {"customer_id": i, "orders_lifetime": n, "monetary_lifetime": float(-i),
                 "last_order_at": NOW - timedelta(days=i)}
                for i, n in enumerate(orders, 1)
            ] + [{"customer_id": 1000}],
        )  # fmt: skip
        score_rfm(conn)
        f, m, r = column(conn, "f_score"), column(conn, "m_score"), column(conn, "r_score")
    n = len(orders)
    ranked = sorted(range(1, n + 1), key=lambda i: (orders[i - 1], i))
    sizes = [n // 5 + (1 if k < n % 5 else 0) for k in range(5)]
    expected = [score for score, size in enumerate(sizes, 1) for _ in range(size)]
    assert [f[i] for i in ranked] == expected
    assert [m[i] for i in range(n, 0, -1)] == expected  # M: the lowest value (highest id) scores 1
    assert [r[i] for i in range(n, 0, -1)] == expected  # R: the oldest order (highest id) scores 1
    assert (f[1000], m[1000], r[1000]) == (None, None, None)


def test_a_customer_without_orders_loses_old_scores(engine):
    with engine.begin() as conn:
        add_rows(conn, [{"customer_id": 1, "r_score": 5, "f_score": 5, "m_score": 5, "rfm_segment": "champions"}])
        score_rfm(conn)
        assert column(conn, "rfm_segment") == {1: None} and column(conn, "r_score") == {1: None}


def test_tiers_split_by_cumulative_share_of_value(engine):
    values = {1: 40.0, 2: 25.0, 3: 20.0, 4: 10.0, 5: 5.0, 6: 0.0, 7: -3.0, 8: None}
    with engine.begin() as conn:
        add_rows(conn, [{"customer_id": c, "clv_predicted": v} for c, v in values.items()])
        counts = assign_tiers(conn, TierConfig(by="clv_predicted", shares={"A": 0.5, "B": 0.3, "C": 0.2}))
        tiers = column(conn, "tier")
    # Value before each: 0, 40, 65, 85, 95 (of 100): A under 50 %, B under 80 %, C after; no value: C.
    assert tiers == {1: "A", 2: "A", 3: "B", 4: "C", 5: "C", 6: "C", 7: "C", 8: "C"}
    assert counts == {"A": 2, "B": 1, "C": 5}


def test_every_customer_takes_the_last_tier_when_nobody_has_value(engine):
    with engine.begin() as conn:
        add_rows(conn, [{"customer_id": c} for c in (1, 2)])
        counts = assign_tiers(conn, TierConfig(shares={"gold": 0.2, "rest": 0.8}))
    assert counts == {"gold": 0, "rest": 2}


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([-5.0, 0.0, 0.1, 0.2, 0.3, 7.5, 40.0]), st.integers(0, 3)),
        min_size=0,
        max_size=40,
    ),
    st.sampled_from([{"A": 0.5, "B": 0.3, "C": 0.2}, {"gold": 0.2, "rest": 0.8}, {"top": 0.1, "mid": 0.6, "low": 0.3}]),
)
def test_the_numpy_ranks_equal_the_sql_ones(rows, shares):
    # Ties everywhere (few distinct values): the split by customer id and the running share must match exactly.
    engine = sa.create_engine("sqlite://")
    attributes_t.create(engine)
    ids = np.array([7 * i % 101 for i in range(1, len(rows) + 1)], dtype=np.int64)  # ids not in row order
    with engine.begin() as conn:
        if rows:
            add_rows(
                conn,
                [
                    {"customer_id": int(c), "orders_lifetime": n, "monetary_lifetime": m, "clv_predicted": m,
                     "last_order_at": NOW - timedelta(days=d) if n else None}
                    for c, (n, m, d) in zip(ids, rows, strict=True)
                ],
            )  # fmt: skip
        score_rfm(conn)
        assign_tiers(conn, TierConfig(by="clv_predicted", shares=shares))
        picked = ("customer_id", "r_score", "f_score", "m_score", "rfm_segment", "tier")
        want = {c: rest for c, *rest in conn.execute(sa.select(*(attributes_t.c[n] for n in picked)))}
    orders = np.array([n for n, _, _ in rows], dtype=np.int64)
    money = np.array([m for _, m, _ in rows], dtype=np.float64)
    age = np.array([d for _, _, d in rows], dtype=np.float64)
    bought = orders > 0
    scores = [quintiles(key[bought], ids[bought]) for key in (-age, orders, money)]
    names = segments(*scores)
    tier = tiers(money, ids, shares)
    got = {int(c): [None, None, None, None, tier[k]] for k, c in enumerate(ids)}
    for k, c in enumerate(ids[bought]):
        got[int(c)][:4] = [int(scores[0][k]), int(scores[1][k]), int(scores[2][k]), names[k]]
    assert got == want
