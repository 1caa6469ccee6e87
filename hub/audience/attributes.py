"""Computed customer attributes (``customer_attributes``, ``customer_group``): the figures segments and triggers read.

:func:`compute_attributes` rebuilds them in set-based SQL inside the caller's transaction: a temporary table of
the orders in scope (value net of returns, UTC purchase day), then one ``INSERT ... SELECT`` per table with
``GROUP BY`` and window functions, then population-wide ranks (:mod:`hub.audience.rfm`). Python touches numpy
arrays fetched in one query, for the one thing SQL cannot do: fit and apply the CLV models (:mod:`hub.audience.clv`);
a full compute ranks on the same arrays (four window sorts fewer), an incremental one re-ranks the table in SQL.

Definitions: an order is a non-return order placed at or before ``now``; its value is ``orders.total`` (or the sum
of its lines), a return's is ``-abs(total)``. Monetary figures are net of returns; ``return_rate`` = returned /
purchased value. Days between purchases count distinct UTC purchase days. Virtual attributes (days since the last
order, age, ...) are never stored: :func:`read_attributes` derives them from ``now``, as segments do in SQL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from hub.audience import clv, rfm
from hub.audience.catalog import ATTRIBUTES
from hub.audience.rfm import assign_tiers, score_rfm, tier_counts
from hub.audience.types import AttributeSpec
from hub.config._audience import AttributesConfig
from hub.db import UTCDateTime, bulk_upsert, is_postgres, one_of
from hub.models.audience import CustomerAttributes, CustomerGroup, ModelFit
from hub.models.commerce import Order, OrderLine, Product, ProductRelation
from hub.models.customer import Customer, CustomerMerge

__all__ = ["ComputeSummary", "compute_attributes", "read_attributes", "touched_customers"]

_attributes: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]
_group: sa.Table = CustomerGroup.__table__  # type: ignore[attr-defined]
_fit: sa.Table = ModelFit.__table__  # type: ignore[attr-defined]
_orders: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]
_relation: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_merge: sa.Table = CustomerMerge.__table__  # type: ignore[attr-defined]

# Work tables of one compute, created and dropped inside the caller's transaction.
_temp = sa.MetaData()
_scope = sa.Table("_aud_scope", _temp, sa.Column("customer_id", sa.Integer, primary_key=True), prefixes=["TEMPORARY"])
_order = sa.Table(
    "_aud_order",
    _temp,
    sa.Column("order_id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("placed_at", UTCDateTime(), nullable=False),
    sa.Column("day", sa.Integer, nullable=False),
    sa.Column("purchase", sa.Integer, nullable=False),  # 1 for an order, 0 for a return
    sa.Column("value", sa.Float, nullable=False),  # negative for a return
    sa.Column("channel", sa.String),
    sa.Column("store", sa.String),
    sa.Index("_aud_order_customer", "customer_id", "day"),
    prefixes=["TEMPORARY"],
)
_day = sa.Table(
    "_aud_day",
    _temp,
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)
_sku = sa.Table(
    "_aud_sku",
    _temp,
    sa.Column("sku", sa.String, primary_key=True),
    sa.Column("product_group", sa.String, primary_key=True),
    sa.Column("own", sa.Integer, nullable=False),  # 1: the SKU's own product group
    sa.Column("main", sa.Integer, nullable=False),  # 1: a main (non-accessory) product of the group
    sa.Column("accessory", sa.Integer, nullable=False),  # 1: an accessory of the group
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,  # one B-tree lookup per order line, the flags included
)
_rhythm_t = sa.Table(
    "_aud_rhythm",
    _temp,
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("first", sa.Integer, nullable=False),
    sa.Column("last", sa.Integer, nullable=False),
    sa.Column("median", sa.Float),
    prefixes=["TEMPORARY"],
)
_figures = sa.Table(
    "_aud_figures",
    _temp,
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("first_order_at", UTCDateTime()),
    sa.Column("last_order_at", UTCDateTime()),
    sa.Column("orders_window", sa.Integer, nullable=False),
    sa.Column("orders_lifetime", sa.Integer, nullable=False),
    sa.Column("monetary_window", sa.Float, nullable=False),
    sa.Column("monetary_lifetime", sa.Float, nullable=False),
    sa.Column("returns_value", sa.Float, nullable=False),
    sa.Column("purchased_value", sa.Float, nullable=False),
    prefixes=["TEMPORARY"],
)
_favourites = sa.Table(
    "_aud_favourite",
    _temp,
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
    prefixes=["TEMPORARY"],
)
_values = sa.Table(
    "_aud_values",
    _temp,
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("clv_predicted", sa.Float),
    sa.Column("expected_purchases", sa.Float),
    sa.Column("p_alive", sa.Float),
    sa.Column("r_score", sa.Integer),
    sa.Column("f_score", sa.Integer),
    sa.Column("m_score", sa.Integer),
    sa.Column("rfm_segment", sa.String),
    sa.Column("tier", sa.String),
    sa.Column("extra", sa.JSON),
    prefixes=["TEMPORARY"],
)
_RANKS = ("r_score", "f_score", "m_score", "rfm_segment", "tier")
_WORK_TABLES = (_scope, _order, _day, _sku, _rhythm_t, _figures, _favourites, _values)

#: Shift that keeps SQLite's day number positive before CAST truncates it (a floor for any date after 700 BC).
_DAY_SHIFT = 1_000_000
_UNIX_EPOCH_JULIAN_DAY = 2440587.5
BGNBD, GAMMA_GAMMA = "bgnbd", "gamma_gamma"
_SQLITE_CACHE_KIB = -131_072  # negative: KiB, i.e. up to 128 MiB, allocated only as pages are used


@dataclass(slots=True)
class ComputeSummary:
    """What one compute did: customers recomputed, full or incremental, the time it took, whether CLV was fitted."""

    customers: int
    full: bool
    seconds: float
    fitted: bool
    tiers: dict[str, int] = field(default_factory=dict)


def compute_attributes(
    conn: sa.Connection,
    config: AttributesConfig,
    now: datetime,
    *,
    customer_ids: Sequence[int] | None = None,
    plugin_attributes: Mapping[str, AttributeSpec] = {},  # read only
) -> ComputeSummary:
    """Recompute the attributes of every live customer (``customer_ids=None``) or of the given ones.

    A given customer merged away loses its rows and its survivor is recomputed. Population-wide figures (R, F, M
    scores, RFM segment, tier) are re-ranked over the whole table either way. CLV models are fitted on a full
    compute (and stored in ``model_fit``); an incremental compute applies the stored fit.
    """
    started = time.perf_counter()
    full = customer_ids is None
    # Dropped first in case a failed compute on this connection left them; DDL rolls back with the transaction.
    for table in _WORK_TABLES:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    cache = _grow_sqlite_cache(conn)
    customers = _fill_scope(conn, customer_ids)
    _stage_orders(conn, now)
    _write_groups(conn)
    _stage_figures(conn, config, now)
    # A full compute ranks the scope (everyone) in numpy with the CLV step; an incremental one re-ranks the whole
    # table in SQL after the insert.
    fitted = _apply_clv(conn, config, now, full)
    _write_attributes(conn, config, now, ranked=full)
    if plugin_attributes:
        _apply_plugins(conn, plugin_attributes, customer_ids, now)
    if full:
        tiers = tier_counts(conn, config.tiers.shares)
    else:
        score_rfm(conn)
        tiers = assign_tiers(conn, config.tiers)
    for table in reversed(_WORK_TABLES):
        table.drop(conn)
    if cache is not None:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")
    return ComputeSummary(customers, full, time.perf_counter() - started, fitted, tiers)


def _grow_sqlite_cache(conn: sa.Connection) -> int | None:
    """On SQLite, a page cache big enough for the sorts and index builds of a full compute; returns the old size.

    The default 2 MB makes inserting 600k ``customer_group`` rows spill index pages to disk (30 % slower).
    """
    if is_postgres(conn):
        return None
    old = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size={_SQLITE_CACHE_KIB}")
    return old


def _fill_scope(conn: sa.Connection, customer_ids: Sequence[int] | None) -> int:
    """The live customers to recompute; delete the rows of everyone recomputed or merged away."""
    live = _customer.c.merged_into.is_(None)
    if customer_ids is None:
        conn.execute(_attributes.delete())
        conn.execute(_group.delete())
        picked = sa.select(_customer.c.id).where(live)
    else:
        asked = one_of(conn, _customer.c.id, sorted(set(customer_ids)))
        survivor = sa.func.coalesce(_customer.c.merged_into, _customer.c.id)
        picked = sa.select(survivor).where(asked).distinct()
        gone = sa.select(_customer.c.id).where(asked, _customer.c.merged_into.is_not(None))
        for table in (_attributes, _group):
            conn.execute(table.delete().where(table.c.customer_id.in_(gone)))
    conn.execute(_scope.insert().from_select(["customer_id"], picked))
    in_scope = sa.select(_scope.c.customer_id)
    if customer_ids is not None:
        for table in (_attributes, _group):
            conn.execute(table.delete().where(table.c.customer_id.in_(in_scope)))
    return int(conn.execute(sa.select(sa.func.count()).select_from(_scope)).scalar_one())


def _day_number(conn: sa.Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """Days since 1970-01-01 UTC, floored."""
    if is_postgres(conn):
        return sa.cast(sa.func.floor(sa.extract("epoch", column) / 86400), sa.Integer)
    shifted = sa.func.julianday(column) - _UNIX_EPOCH_JULIAN_DAY + _DAY_SHIFT
    return sa.cast(shifted, sa.Integer) - _DAY_SHIFT


def _stage_orders(conn: sa.Connection, now: datetime) -> None:
    """Copy the scope's orders with their value and purchase day, and the distinct purchase days."""
    o = _orders
    lines_total = sa.select(sa.func.sum(_line.c.line_total)).where(_line.c.order_id == o.c.id).scalar_subquery()
    amount = sa.cast(sa.func.coalesce(o.c.total, lines_total, 0), sa.Float)
    staged = (
        sa.select(
            o.c.id,
            o.c.customer_id,
            o.c.placed_at,
            _day_number(conn, o.c.placed_at),
            sa.case((o.c.is_return, 0), else_=1),
            sa.case((o.c.is_return, -sa.func.abs(amount)), else_=amount),
            o.c.channel,
            o.c.store_external_id,
        )
        .join(_scope, _scope.c.customer_id == o.c.customer_id)
        .where(o.c.placed_at <= now)
    )
    names = ["order_id", "customer_id", "placed_at", "day", "purchase", "value", "channel", "store"]
    conn.execute(_order.insert().from_select(names, staged))
    days = sa.select(_order.c.customer_id, _order.c.day).where(_order.c.purchase == 1).distinct()
    conn.execute(_day.insert().from_select(["customer_id", "day"], days))


def _write_groups(conn: sa.Connection) -> None:
    """One ``customer_group`` row per (customer, product group bought), with accessory ownership, in one pass.

    An accessory of a group is a product of that group marked ``is_accessory``, or a product related as
    ``accessory`` to a main (non-accessory) product of the group, whatever its own group. A small table maps each
    SKU to the groups it counts for (its own; those it is an accessory of), so the order lines are read once.
    """
    p, main = _product, _product.alias("main")
    flag = sa.case((p.c.is_accessory, 1), else_=0)
    own = sa.select(
        p.c.sku, p.c.product_group, sa.literal(1).label("own"), (1 - flag).label("main"), flag.label("accessory")
    ).where(p.c.product_group.is_not(None))
    related = (
        sa.select(_relation.c.related_sku, main.c.product_group, sa.literal(0), sa.literal(0), sa.literal(1))
        .join(main, main.c.sku == _relation.c.sku)
        .where(_relation.c.kind == "accessory", main.c.product_group.is_not(None), sa.not_(main.c.is_accessory))
    )
    both = sa.union_all(own, related).subquery("both")
    mapped = sa.select(
        both.c.sku,
        both.c.product_group,
        sa.func.max(both.c.own),
        sa.func.max(both.c.main),
        sa.func.max(both.c.accessory),
    ).group_by(both.c.sku, both.c.product_group)
    conn.execute(_sku.insert().from_select(["sku", "product_group", "own", "main", "accessory"], mapped))

    o, s = _order, _sku
    mine, is_main, is_accessory = s.c.own == 1, s.c.main == 1, s.c.accessory == 1
    groups = (
        sa.select(
            o.c.customer_id,
            s.c.product_group,
            sa.func.min(sa.case((mine, o.c.placed_at))),
            sa.func.max(sa.case((mine, o.c.placed_at))),
            sa.func.count(sa.distinct(sa.case((mine, o.c.order_id)))),
            sa.func.max(sa.case((is_main, o.c.placed_at))),
            sa.func.max(s.c.accessory) == 1,
            sa.func.max(sa.case((is_accessory, o.c.placed_at))),
        )
        .select_from(_line)
        .join(o, o.c.order_id == _line.c.order_id)
        .join(s, s.c.sku == _line.c.sku)
        .where(o.c.purchase == 1)
        .group_by(o.c.customer_id, s.c.product_group)
        .having(sa.func.max(s.c.own) == 1)
    )
    names = [
        "customer_id",
        "product_group",
        "first_bought_at",
        "last_bought_at",
        "orders",
        "main_last_bought_at",
        "accessory_owned",
        "accessory_last_bought_at",
    ]
    conn.execute(_group.insert().from_select(names, groups))


def _json_literal(conn: sa.Connection, text: str) -> sa.ColumnElement[Any]:
    return sa.literal_column(f"'{text}'::json" if is_postgres(conn) else f"'{text}'")


def _product_groups(full: bool) -> sa.Subquery:
    """Each scope customer's product groups as a JSON list, sorted (PostgreSQL; see :func:`_product_groups_of`)."""
    g = _group
    scoped = g if full else g.join(_scope, _scope.c.customer_id == g.c.customer_id)
    listed = sa.func.json_agg(aggregate_order_by(g.c.product_group, g.c.product_group))
    return (
        sa.select(g.c.customer_id, listed.label("groups"))
        .select_from(scoped)
        .group_by(g.c.customer_id)
        .subquery("product_groups")
    )


def _product_groups_of(customer_id: sa.ColumnElement[int]) -> sa.ColumnElement[Any]:
    """SQLite: one customer's product groups as a JSON list, sorted, read off the primary key of
    ``customer_group`` (a grouped subquery would sort every row again and build an index to join it)."""
    g = _group
    ordered = (
        sa.select(g.c.product_group)
        .where(g.c.customer_id == customer_id)
        .order_by(g.c.product_group)
        .correlate_except(g)
        .subquery("ordered")
    )
    return sa.select(sa.func.json_group_array(ordered.c.product_group)).scalar_subquery()


def _write_favourites(conn: sa.Connection) -> None:
    """Per customer, the store and the channel with the most orders; ties go to the most recent, then the name."""
    for kind, column in (("store", _order.c.store), ("channel", _order.c.channel)):
        counted = (
            sa.select(
                _order.c.customer_id,
                column.label("value"),
                sa.func.count().label("orders"),
                sa.func.max(_order.c.placed_at).label("last"),
            )
            .where(_order.c.purchase == 1, column.is_not(None))
            .group_by(_order.c.customer_id, column)
            .subquery()
        )
        ranked = sa.select(
            counted.c.customer_id,
            counted.c.value,
            sa.func.row_number()
            .over(
                partition_by=counted.c.customer_id,
                order_by=(counted.c.orders.desc(), counted.c.last.desc(), counted.c.value),
            )
            .label("rank"),
        ).subquery()
        best = sa.select(ranked.c.customer_id, sa.literal(kind), ranked.c.value).where(ranked.c.rank == 1)
        conn.execute(_favourites.insert().from_select(["customer_id", "kind", "value"], best))


def _write_rhythm(conn: sa.Connection) -> None:
    """Per customer: purchase days and their span (for the mean), and the median gap between purchase days.

    The counts first (straight off the primary key of ``_aud_day``), with the median of one or two gaps, which the
    span gives (the gap, or half the sum of both); then the median of more gaps, which needs the gaps ranked: only
    the days of those customers are read again.
    """
    d, r = _day, _rhythm_t
    count, span = sa.func.count(), sa.cast(sa.func.max(d.c.day) - sa.func.min(d.c.day), sa.Float)
    days = sa.select(
        d.c.customer_id,
        count,
        sa.func.min(d.c.day),
        sa.func.max(d.c.day),
        sa.case((count == 2, span), (count == 3, span / 2), else_=sa.null()),
    ).group_by(d.c.customer_id)
    conn.execute(r.insert().from_select(["customer_id", "days", "first", "last", "median"], days))
    gaps = (
        sa.select(
            d.c.customer_id,
            (d.c.day - sa.func.lag(d.c.day).over(partition_by=d.c.customer_id, order_by=d.c.day)).label("gap"),
        )
        .join(r, r.c.customer_id == d.c.customer_id)
        .where(r.c.days > 3)
        .subquery("gaps")
    )
    ranked = (
        sa.select(
            gaps.c.customer_id,
            gaps.c.gap,
            sa.func.row_number().over(partition_by=gaps.c.customer_id, order_by=gaps.c.gap).label("rank"),
        )
        .where(gaps.c.gap.is_not(None))
        .subquery("ranked_gaps")
    )
    n = r.c.days - 1
    median = (
        sa.select(ranked.c.customer_id, sa.func.avg(sa.cast(ranked.c.gap, sa.Float)).label("median"))
        .join(r, r.c.customer_id == ranked.c.customer_id)
        .where(sa.or_(ranked.c.rank == (n + 1) // 2, ranked.c.rank == (n + 2) // 2))
        .group_by(ranked.c.customer_id)
        .subquery("median_gap")
    )
    conn.execute(r.update().where(r.c.customer_id == median.c.customer_id).values(median=median.c.median))


def _stage_figures(conn: sa.Connection, config: AttributesConfig, now: datetime) -> None:
    """Per customer with orders in scope: order counts and values; then the rhythm and the favourites."""
    o = _order
    start = now - config.window
    bought = o.c.purchase == 1
    in_window = o.c.placed_at >= sa.bindparam("window_start", start, type_=UTCDateTime())
    figures = sa.select(
        o.c.customer_id,
        sa.func.min(sa.case((bought, o.c.placed_at))),
        sa.func.max(sa.case((bought, o.c.placed_at))),
        sa.func.sum(sa.case((sa.and_(bought, in_window), 1), else_=0)),
        sa.func.sum(o.c.purchase),
        sa.func.sum(sa.case((in_window, o.c.value), else_=0.0)),
        sa.func.sum(o.c.value),
        sa.func.sum(sa.case((bought, 0.0), else_=-o.c.value)),
        sa.func.sum(sa.case((bought, o.c.value), else_=0.0)),
    ).group_by(o.c.customer_id)
    conn.execute(_figures.insert().from_select([c.name for c in _figures.c], figures))
    _write_rhythm(conn)
    _write_favourites(conn)


def _write_attributes(conn: sa.Connection, config: AttributesConfig, now: datetime, *, ranked: bool) -> None:
    """One ``customer_attributes`` row per scope customer (zeros and NULLs without orders), ranked if ``ranked``."""
    f, r, v, sc = _figures, _rhythm_t, _values, _scope
    store, channel = _favourites.alias("store"), _favourites.alias("channel")
    groups = _product_groups(ranked) if is_postgres(conn) else None
    listed = _product_groups_of(sc.c.customer_id) if groups is None else groups.c.groups
    mean = sa.cast(r.c.last - r.c.first, sa.Float) / sa.func.nullif(r.c.days - 1, 0)
    zero = sa.literal(0.0, sa.Float)
    columns: dict[str, sa.ColumnElement[Any]] = {
        "customer_id": sc.c.customer_id,
        "first_order_at": f.c.first_order_at,
        "last_order_at": f.c.last_order_at,
        "orders_window": sa.func.coalesce(f.c.orders_window, 0),
        "orders_lifetime": sa.func.coalesce(f.c.orders_lifetime, 0),
        "monetary_window": sa.func.coalesce(f.c.monetary_window, zero),
        "monetary_lifetime": sa.func.coalesce(f.c.monetary_lifetime, zero),
        "returns_value": sa.func.coalesce(f.c.returns_value, zero),
        "return_rate": sa.case((f.c.purchased_value > 0, f.c.returns_value / f.c.purchased_value), else_=sa.null()),
        "avg_order_value": f.c.monetary_lifetime / sa.func.nullif(f.c.orders_lifetime, 0),
        "clv_historical": sa.func.coalesce(f.c.monetary_lifetime, zero),
        "clv_predicted": v.c.clv_predicted,
        "expected_purchases": v.c.expected_purchases,
        "p_alive": v.c.p_alive,
        "mean_days_between": mean,
        "median_days_between": r.c.median,
        "expected_next_order_at": _expected_next(conn, f.c.last_order_at, mean),
        "favourite_store": store.c.value,
        "favourite_channel": channel.c.value,
        "product_groups": sa.func.coalesce(listed, _json_literal(conn, "[]")),
        "extra": _json_literal(conn, "{}"),
        "computed_at": sa.bindparam("computed_at", now, type_=UTCDateTime()),
    }
    s = sc.c.customer_id
    rows = (
        sa.select(*(column.label(name) for name, column in columns.items()))
        .select_from(sc)
        .outerjoin(f, f.c.customer_id == s)
        .outerjoin(r, r.c.customer_id == s)
        .outerjoin(v, v.c.customer_id == s)
        .outerjoin(store, sa.and_(store.c.customer_id == s, store.c.kind == "store"))
        .outerjoin(channel, sa.and_(channel.c.customer_id == s, channel.c.kind == "channel"))
    )
    if groups is not None:
        rows = rows.outerjoin(groups, groups.c.customer_id == s)
    if ranked:
        columns.update({name: v.c[name] for name in _RANKS})
        rows = rows.add_columns(*(v.c[name] for name in _RANKS))
    conn.execute(_attributes.insert().from_select(list(columns), rows))


def _expected_next(
    conn: sa.Connection, last: sa.ColumnElement[Any], mean: sa.ColumnElement[float]
) -> sa.ColumnElement[Any]:
    """``expected_next_order_at`` = last order + mean days between, to the second."""
    seconds = sa.cast(sa.func.round(mean * 86400), sa.Integer)
    if is_postgres(conn):
        expected: sa.ColumnElement[Any] = last + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    else:
        # SQLite's datetime() drops the fraction of a second: keep the stored one, in the stored format.
        expected = sa.func.datetime(last, sa.func.printf("%+d seconds", seconds)).op("||")(sa.func.substr(last, 20))
    return sa.case((mean.is_not(None), expected), else_=sa.null())


def _apply_clv(conn: sa.Connection, config: AttributesConfig, now: datetime, full: bool) -> bool:
    """Fit (full compute) or load the CLV models and write each scope customer's predictions; True if fitted.

    Time is in days: ``frequency`` = repeat purchase days, ``recency`` = first to last purchase day, ``T`` = first
    purchase day to today. Spend per purchase = net value / purchase days (Gamma-Gamma over purchase days).

    A full compute also ranks the scope here, on the figures already fetched (:func:`_rank`), so the insert reads
    every population-wide figure from ``_aud_values``.
    """
    r, f, sc = _rhythm_t, _figures, _scope
    # R ranks by last order time: SQLite's stored text sorts as the time does; PostgreSQL's to float seconds
    # (exact to the microsecond for any date of this era).
    last = (
        sa.func.date_part(sa.literal_column("'epoch'"), f.c.last_order_at) if is_postgres(conn) else f.c.last_order_at
    )
    query = (
        sa.select(
            sc.c.customer_id,
            r.c.days,
            r.c.first,
            r.c.last,
            f.c.monetary_lifetime,
            f.c.orders_lifetime,
            f.c.monetary_window,
            last,
        )
        .select_from(sc)
        .outerjoin(f, f.c.customer_id == sc.c.customer_id)
        .outerjoin(r, r.c.customer_id == sc.c.customer_id)
        .order_by(sc.c.customer_id)
    )
    columns = _fetch_columns(conn, query, 8)
    ids = np.array(columns[0], dtype=np.int64)
    every_days = np.array(columns[1], dtype=np.float64)
    has_days = ~np.isnan(every_days)  # customers with purchase days, those the models see
    data = np.array([columns[k] for k in (1, 2, 3, 4)], dtype=np.float64)[:, has_days]
    days, first, last_day, monetary = data.reshape(4, -1)
    today = math.floor(now.timestamp() / 86400)
    frequency, recency, age = days - 1, last_day - first, today - first
    spend = np.clip(monetary, 0.0, None) / np.maximum(days, 1)

    fitted = False
    if full:
        repeat = int((frequency > 0).sum())
        if repeat >= config.clv.min_customers:
            bgnbd = clv.fit_bgnbd(frequency, recency, age)
            gamma = clv.fit_gamma_gamma(days[frequency > 0], spend[frequency > 0])
            details = {"unit": "days", "repeat_customers": repeat}
            for name, params in ((BGNBD, bgnbd.to_dict()), (GAMMA_GAMMA, gamma.to_dict())):
                bulk_upsert(
                    conn,
                    _fit,
                    [(name, params, len(days), details, now)],
                    ["name", "params", "customers", "details", "fitted_at"],
                    ["name"],
                )
            fitted = True
        else:
            conn.execute(_fit.delete().where(_fit.c.name.in_([BGNBD, GAMMA_GAMMA])))
    models = _stored_models(conn)
    n = len(ids)
    predicted, expected, alive = (np.full(n, np.nan) for _ in range(3))
    if models is not None and len(days):
        bgnbd, gamma = models
        horizon = config.clv.horizon.total_seconds() / 86400
        purchases = clv.expected_purchases(bgnbd, horizon, frequency, recency, age)
        expected[has_days] = purchases
        alive[has_days] = clv.p_alive(bgnbd, frequency, recency, age)
        if gamma.q > 1:
            predicted[has_days] = purchases * clv.expected_spend(gamma, days, spend)
    names = ["customer_id", "clv_predicted", "expected_purchases", "p_alive"]
    values = [ids.tolist(), *(_nullable(a) for a in (predicted, expected, alive))]
    if full:
        names += _RANKS
        values += _rank(config, ids, columns, predicted)
    if n:
        bulk_upsert(conn, _values, list(zip(*values, strict=True)), names, ["customer_id"], [])
    return fitted


def _fetch_columns(conn: sa.Connection, query: sa.Select[Any], width: int) -> list[tuple[Any, ...]]:
    """The result of ``query`` (no bound parameters) as one tuple per column, straight off the driver's cursor:
    raw values (SQLite's stored text for times), without the cost of SQLAlchemy's rows and result processing."""
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]


def _nullable(values: np.ndarray) -> list[float | None]:
    """Floats for the database, None for NaN and infinities."""
    listed = values.astype(object)
    listed[~np.isfinite(values)] = None
    return listed.tolist()


def _rank(
    config: AttributesConfig, ids: np.ndarray, columns: list[tuple[Any, ...]], predicted: np.ndarray
) -> list[list[Any]]:
    """Every scope customer's R, F, M scores, RFM segment and tier (columns of :data:`_RANKS`), ranked among the
    scope: what :func:`score_rfm` and :func:`assign_tiers` would write after the insert."""
    orders = np.array(columns[5], dtype=np.float64)
    bought = orders > 0  # NaN (no orders at all) is not
    n, buyers = len(ids), ids[bought]
    last = np.array(columns[7], dtype=object)[bought]
    last_key = last.astype(str) if len(last) and isinstance(last[0], str) else last.astype(np.float64)
    monetary = np.nan_to_num(np.array(columns[4], dtype=np.float64), nan=0.0)
    scores = [rfm.quintiles(key, buyers) for key in (last_key, orders[bought], monetary[bought])]
    ranked: list[list[Any]] = []
    for values in (*scores, rfm.segments(*scores)):
        column = np.full(n, None, dtype=object)
        column[bought] = values.tolist()
        ranked.append(column.tolist())
    by = {
        "monetary_window": np.array(columns[6], dtype=np.float64),
        "monetary_lifetime": monetary,
        "clv_historical": monetary,
        "clv_predicted": predicted,
    }[config.tiers.by]
    value = np.where(np.isfinite(by), by, 0.0)  # NULL counts as 0
    ranked.append(rfm.tiers(value, ids, config.tiers.shares).tolist())
    return ranked


def _stored_models(conn: sa.Connection) -> tuple[clv.BgNbd, clv.GammaGamma] | None:
    query = sa.select(_fit.c.name, _fit.c.params).where(_fit.c.name.in_([BGNBD, GAMMA_GAMMA]))
    stored = dict(conn.execute(query).all())
    if BGNBD not in stored or GAMMA_GAMMA not in stored:
        return None
    return clv.BgNbd(**stored[BGNBD]), clv.GammaGamma(**stored[GAMMA_GAMMA])


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _apply_plugins(
    conn: sa.Connection,
    plugin_attributes: Mapping[str, AttributeSpec],
    customer_ids: Sequence[int] | None,
    now: datetime,
) -> None:
    """Store each plugin attribute's values in ``customer_attributes.extra`` (one UPDATE for all of them)."""
    extra: dict[int, dict[str, Any]] = {}
    for name, spec in plugin_attributes.items():
        for customer_id, value in spec.compute(conn, customer_ids, now):
            extra.setdefault(customer_id, {})[name] = _jsonable(value)
    if not extra:
        return
    conn.execute(_values.delete())
    bulk_upsert(conn, _values, list(extra.items()), ["customer_id", "extra"], ["customer_id"], [])
    scoped = _values.c.customer_id.in_(sa.select(_scope.c.customer_id))
    conn.execute(
        _attributes.update()
        .where(_attributes.c.customer_id == _values.c.customer_id, scoped)
        .values(extra=_values.c.extra)
    )


# --------------------------------------------------------------------------------------------- reading


_CUSTOMER_COLUMNS = ("is_b2b", "country", "city", "postcode", "gender", "language", "birth_date", "created_at")


def read_attributes(
    conn: sa.Connection,
    customer_ids: Sequence[int],
    now: datetime,
    *,
    plugin_attributes: Mapping[str, AttributeSpec] = {},  # read only
) -> dict[int, dict[str, Any]]:
    """Every catalog attribute and every plugin attribute of each customer that exists, in one query.

    Virtual attributes are derived from ``now`` as expressions do; a customer without a computed row gets
    ``None`` (or 0 for counts) for the computed ones.
    """
    if not customer_ids:
        return {}
    stored = [name for name, attribute in ATTRIBUTES.items() if attribute.source == "attributes"]
    c, t = _customer, _attributes
    query = (
        sa.select(
            c.c.id,
            c.c.email,
            c.c.phone,
            c.c.member_no,
            *(c.c[name] for name in _CUSTOMER_COLUMNS),
            *(t.c[name] for name in stored),
            t.c.extra,
        )
        .select_from(c)
        .outerjoin(t, t.c.customer_id == c.c.id)
        .where(one_of(conn, c.c.id, sorted(set(customer_ids))))
    )
    found: dict[int, dict[str, Any]] = {}
    for row in conn.execute(query).mappings():
        values: dict[str, Any] = {name: row[name] for name in (*_CUSTOMER_COLUMNS, *stored)}
        values["product_groups"] = list(values["product_groups"] or [])
        for name in ("orders_window", "orders_lifetime"):
            values[name] = values[name] or 0
        values.update(_virtual(row, now))
        extra = row["extra"] or {}
        for name in plugin_attributes:
            values[name] = extra.get(name)
        found[row["id"]] = values
    return found


def _whole_days(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else (now - since) // timedelta(days=1)


def _virtual(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The catalog's ``virtual`` attributes at ``now``."""
    since_last = _whole_days(row["last_order_at"], now)
    expected, mean, birth = row["expected_next_order_at"], row["mean_days_between"], row["birth_date"]
    age = None
    if birth is not None:
        today = now.date()
        age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return {
        "days_since_last_order": since_last,
        "days_since_first_order": _whole_days(row["first_order_at"], now),
        "days_overdue": None if expected is None else (now - expected) / timedelta(days=1),
        "overdue_factor": None if since_last is None or not mean else since_last / mean,
        "age": age,
        "has_email": bool(row["email"]),
        "has_phone": bool(row["phone"]),
        "is_member": bool(row["member_no"]),
    }


def touched_customers(conn: sa.Connection, since: datetime) -> list[int]:
    """Live customers whose own row, orders or merges changed at or after ``since``, sorted.

    A merged-away customer counts as its survivor (the merge updates its row and moves its orders).
    """
    c, o, m = _customer, _orders, _merge
    survivor = sa.func.coalesce(c.c.merged_into, c.c.id)
    changed_orders = sa.select(o.c.customer_id).where(
        o.c.customer_id.is_not(None), sa.or_(o.c.loaded_at >= since, o.c.updated_at >= since)
    )
    touched = sa.union(
        sa.select(survivor.label("id")).where(c.c.updated_at >= since),
        sa.select(survivor).where(c.c.id.in_(changed_orders)),
        sa.select(m.c.survivor_id).where(m.c.at >= since),
    ).subquery("touched")
    live = sa.select(c.c.id).where(c.c.id.in_(sa.select(touched.c.id)), c.c.merged_into.is_(None)).order_by(c.c.id)
    return list(conn.execute(live).scalars())
