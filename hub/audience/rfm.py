"""R, F and M scores, the named RFM segments and the A/B/C value tiers: population-wide ranks in set-based SQL,
and their numpy twins (:func:`quintiles`, :func:`segments`, :func:`tiers`) for the arrays a full compute has fetched.

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
from typing import Any

import numpy as np
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


def quintiles(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``NTILE(5) OVER (ORDER BY key, id)`` in numpy: each row's quintile (1..5), the first ``n % 5`` one larger."""
    n = len(ids)
    size, larger = divmod(n, 5)
    position = np.arange(n)
    split = larger * (size + 1)  # rows in the larger quintiles
    bucket = np.where(position < split, position // (size + 1), larger + (position - split) // max(size, 1))
    scores = np.empty(n, dtype=np.int64)
    scores[np.lexsort((ids, keys))] = bucket + 1
    return scores


def segments(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """:func:`rfm_segment` over score arrays: the named segment of each row (an object array of str)."""
    cells = np.empty(60, dtype=object)
    for (r_, fm), name in GRID.items():
        cells[10 * r_ + fm] = name
    return cells[10 * r + (f + m + 1) // 2]


#: A share within this of a tier's bound counts as on it: sums in another order (SQL's window, numpy's cumsum)
#: differ in the last bits, and a customer exactly at the bound must get one tier from both.
SHARE_TOLERANCE = 1e-9


def tiers(values: np.ndarray, ids: np.ndarray, shares: Mapping[str, float]) -> np.ndarray:
    """:func:`assign_tiers` in numpy: each row's tier name (an object array), ``values`` with 0 for NULL.

    The value before a row is summed one row at a time down the ranking, as the SQL window does.
    """
    names = list(shares)
    order = np.lexsort((ids, -values))
    ranked = values[order]
    running = np.cumsum(np.where(ranked > 0, ranked, 0.0))
    total = running[-1] if len(running) else 0.0
    before = np.concatenate(([0.0], running[:-1]))
    index = np.full(len(ranked), len(names) - 1)
    if total != 0:
        share_before = before / total
        undecided = ranked > 0
        bound = 0.0
        for k, name in enumerate(names[:-1]):
            bound += shares[name]
            taken = undecided & (share_before < bound - SHARE_TOLERANCE)
            index[taken] = k
            undecided &= ~taken
    tier = np.empty(len(ranked), dtype=object)
    tier[order] = np.array(names, dtype=object)[index]
    return tier


def score_windows(
    customer_id: sa.ColumnElement[int],
    last_order_at: sa.ColumnElement[Any],
    orders_lifetime: sa.ColumnElement[int],
    monetary_lifetime: sa.ColumnElement[float],
    *,
    partition_by: sa.ColumnElement[Any] | None = None,
) -> tuple[sa.ColumnElement[int], sa.ColumnElement[int], sa.ColumnElement[int]]:
    """R, F and M as ``NTILE(5)`` windows over the rows selected (or over each ``partition_by`` partition)."""

    def quintile(column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        return sa.func.ntile(5, type_=sa.Integer).over(partition_by=partition_by, order_by=(column, customer_id))

    return quintile(last_order_at), quintile(orders_lifetime), quintile(monetary_lifetime)


def score_rfm(conn: sa.Connection) -> None:
    """Rank every row of ``customer_attributes``: R, F, M quintiles and the named segment, in one UPDATE."""
    t = _attributes
    r, f, m = score_windows(t.c.customer_id, t.c.last_order_at, t.c.orders_lifetime, t.c.monetary_lifetime)
    scores = (
        sa.select(t.c.customer_id, r.label("r"), f.label("f"), m.label("m"))
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


def tier_windows(
    customer_id: sa.ColumnElement[int], value: sa.ColumnElement[float]
) -> tuple[sa.ColumnElement[float], sa.ColumnElement[float]]:
    """The positive value of everyone ranked before a row (by value descending, ties by id), and of everyone."""
    positive = sa.case((value > 0, value), else_=0.0)
    before = sa.func.sum(positive).over(order_by=(value.desc(), customer_id), rows=(None, -1))
    return before, sa.func.sum(positive).over()


def tier_sql(
    value: sa.ColumnElement[float],
    before: sa.ColumnElement[float],
    total: sa.ColumnElement[float],
    shares: Mapping[str, float],
) -> sa.ColumnElement[str]:
    """The tier of a row from its value and the :func:`tier_windows` figures."""
    names = list(shares)
    bounds, running = [], 0.0
    for name in names[:-1]:
        running += shares[name]
        bounds.append((name, running))
    share_before = sa.func.coalesce(before, 0.0) / sa.func.nullif(total, 0.0)
    return sa.case(
        (value <= 0, names[-1]),
        *((share_before < bound - SHARE_TOLERANCE, name) for name, bound in bounds),
        else_=names[-1],
    )


def tier_value(column: sa.ColumnElement[Any]) -> sa.ColumnElement[float]:
    """What tiers rank: the ``tiers.by`` column, 0 when NULL."""
    return sa.func.coalesce(column, 0.0)


def assign_tiers(conn: sa.Connection, tiers: TierConfig) -> dict[str, int]:
    """Give every row its value tier; return the count per tier.

    Customers sorted by ``tiers.by`` descending (ties by id) take the first tier while the value of everyone
    before them is below that tier's cumulative share of the total positive value; a customer with no positive
    value takes the last tier.
    """
    t = _attributes
    value = tier_value(t.c[tiers.by])
    before, total = tier_windows(t.c.customer_id, value)
    ranked = sa.select(t.c.customer_id, value.label("value"), before.label("before"), total.label("total")).subquery(
        "ranked"
    )
    tier = tier_sql(ranked.c.value, ranked.c.before, ranked.c.total, tiers.shares)
    tiered = sa.select(ranked.c.customer_id, tier.label("tier")).subquery("tiered")
    conn.execute(t.update().where(t.c.customer_id == tiered.c.customer_id).values(tier=tiered.c.tier))
    return tier_counts(conn, tiers.shares)


def tier_counts(conn: sa.Connection, shares: Mapping[str, float]) -> dict[str, int]:
    """Customers per tier, every configured tier listed (0 when empty)."""
    t = _attributes
    found = {tier: n for tier, n in conn.execute(sa.select(t.c.tier, sa.func.count()).group_by(t.c.tier))}
    return {name: int(found.get(name, 0)) for name in shares}
