"""R, F and M scores, the named RFM segments and the A/B/C value tiers: population-wide ranks in set-based SQL.

Scores are quintiles (``NTILE(5)``) among customers with at least one order, 5 the best: R by last order time,
F by lifetime orders, M by lifetime value net of returns; equal values are split by customer id, so a rank is
stable between runs. Customers without orders have no scores and no RFM segment.

The named segment reads the classic R x FM grid, with FM = (F + M) / 2 rounded half up:

======  ==============  ==================  ==================  ===========  ===========
R \\ FM  1               2                   3                   4            5
======  ==============  ==================  ==================  ===========  ===========
5       new             potential_loyalist  potential_loyalist  champions    champions
4       promising       potential_loyalist  potential_loyalist  loyal        loyal
3       about_to_sleep  about_to_sleep      need_attention      loyal        loyal
2       hibernating     hibernating         at_risk             at_risk      cannot_lose
1       lost            hibernating         at_risk             at_risk      cannot_lose
======  ==============  ==================  ==================  ===========  ===========
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from hub.config._audience import TierConfig
from hub.models.audience import CustomerAttributes

_attributes: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]

#: What each named segment means, in the words a marketer uses.
SEGMENTS: dict[str, str] = {
    "champions": "bought recently, buy often and spend the most",
    "loyal": "buy often and spend well; responsive to loyalty offers",
    "potential_loyalist": "recent customers with average frequency and spend",
    "new": "bought very recently, for the first time or rarely",
    "promising": "recent shoppers who have not spent much yet",
    "need_attention": "average recency, frequency and spend",
    "about_to_sleep": "below-average recency and frequency: will be lost without reactivation",
    "at_risk": "spent well and bought often, but long ago",
    "cannot_lose": "made the biggest and most frequent purchases, but long ago",
    "hibernating": "last purchase long ago, few orders, low spend",
    "lost": "lowest recency, frequency and spend",
}

_ROWS: dict[int, tuple[str, str, str, str, str]] = {  # R -> the segment for FM 1..5
    5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cannot_lose"),
}
#: (R, FM) -> named segment.
GRID: dict[tuple[int, int], str] = {(r, fm): name for r, row in _ROWS.items() for fm, name in enumerate(row, 1)}


def fm_score(f: int, m: int) -> int:
    """The combined frequency-monetary score: the mean of F and M, rounded half up."""
    return (f + m + 1) // 2


def rfm_segment(r: int | None, f: int | None, m: int | None) -> str | None:
    """The named segment of scores (None for a customer without scores)."""
    if r is None or f is None or m is None:
        return None
    return GRID[(r, fm_score(f, m))]


def segment_sql(r: sa.ColumnElement[int], f: sa.ColumnElement[int], m: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """:func:`rfm_segment` as a SQL expression (a CASE over the grid's 25 cells keyed 10 * R + FM)."""
    cell = r * 10 + (f + m + 1) // 2
    return sa.case({10 * r_ + fm: name for (r_, fm), name in GRID.items()}, value=cell)


def score_rfm(conn: sa.Connection) -> None:
    """Rank every row of ``customer_attributes``: R, F, M quintiles and the named segment, in one UPDATE."""
    t = _attributes
    scores = (
        sa.select(
            t.c.customer_id,
            sa.func.ntile(5, type_=sa.Integer).over(order_by=(t.c.last_order_at, t.c.customer_id)).label("r"),
            sa.func.ntile(5, type_=sa.Integer).over(order_by=(t.c.orders_lifetime, t.c.customer_id)).label("f"),
            sa.func.ntile(5, type_=sa.Integer).over(order_by=(t.c.monetary_lifetime, t.c.customer_id)).label("m"),
        )
        .where(t.c.orders_lifetime > 0)
        .subquery("scores")
    )
    named = sa.select(
        scores.c.customer_id, scores.c.r, scores.c.f, scores.c.m, segment_sql(scores.c.r, scores.c.f, scores.c.m)
    ).subquery("named")
    conn.execute(
        t.update()
        .where(t.c.orders_lifetime <= 0, t.c.r_score.is_not(None))
        .values(r_score=None, f_score=None, m_score=None, rfm_segment=None)
    )
    conn.execute(
        t.update()
        .where(t.c.customer_id == named.c.customer_id)
        .values(r_score=named.c.r, f_score=named.c.f, m_score=named.c.m, rfm_segment=named.c[4])
    )


def assign_tiers(conn: sa.Connection, tiers: TierConfig) -> dict[str, int]:
    """Give every row its value tier; return the count per tier.

    Customers sorted by ``tiers.by`` descending (ties by id) take the first tier while the value of everyone
    before them is below that tier's cumulative share of the total positive value; a customer with no positive
    value takes the last tier.
    """
    t = _attributes
    value = sa.func.coalesce(t.c[tiers.by], 0.0)
    positive = sa.case((value > 0, value), else_=0.0)
    ranked = sa.select(
        t.c.customer_id,
        value.label("value"),
        (sa.func.sum(positive).over(order_by=(value.desc(), t.c.customer_id), rows=(None, -1))).label("before"),
        sa.func.sum(positive).over().label("total"),
    ).subquery("ranked")
    names = list(tiers.shares)
    bounds, running = [], 0.0
    for name in names[:-1]:
        running += tiers.shares[name]
        bounds.append((name, running))
    share_before = sa.func.coalesce(ranked.c.before, 0.0) / sa.func.nullif(ranked.c.total, 0.0)
    tier = sa.case(
        (ranked.c.value <= 0, names[-1]),
        *((share_before < bound, name) for name, bound in bounds),
        else_=names[-1],
    )
    tiered = sa.select(ranked.c.customer_id, tier.label("tier")).subquery("tiered")
    conn.execute(t.update().where(t.c.customer_id == tiered.c.customer_id).values(tier=tiered.c.tier))
    return tier_counts(conn, tiers.shares)


def tier_counts(conn: sa.Connection, shares: Mapping[str, float]) -> dict[str, int]:
    """Customers per tier, every configured tier listed (0 when empty)."""
    t = _attributes
    found = {tier: n for tier, n in conn.execute(sa.select(t.c.tier, sa.func.count()).group_by(t.c.tier))}
    return {name: int(found.get(name, 0)) for name in shares}
