"""The follow-up analysis: for each product and each product group, what its buyers bought next.

As a retailer's BI tool asks it ("what did other buyers of a game console buy next?"), over the unified orders:
returns are not purchases, and a customer merged into another counts as that one. For an antecedent A (a SKU,
or any product of a group) and a product B:

- ``buyers``: customers who bought A; A's time is their first purchase of it. A group's buyers are those who
  bought one of its main products: "buyers of a game console" are not the ones who only bought a game;
- ``support``: those of them who bought B in a *later* order within ``window`` of that time (the same order is
  "bought together", not "next"; B is never A itself);
- ``confidence = support / buyers``; ``base``: the share of all buying customers who ever bought B;
- ``lift = confidence / base``: how many times likelier than chance;
- ``score = (support - buyers * base) / (buyers + PRIOR_BUYERS)``: the buyers above the ones chance would
  give, per buyer, as if ``PRIOR_BUYERS`` more buyers had bought at the base rate. It is ``confidence - base``
  for a well-bought antecedent and shrinks toward 0 for a thin one, so it ranks a strong, specific follow-up
  above a bestseller every buyer takes anyway (lift near 1) and above three of four buyers of a rarity.

Pairs below ``min_support`` customers, ``min_confidence`` or ``min_lift`` are dropped. The whole table is rebuilt
set-based (a few ``INSERT ... SELECT`` into temporary work tables, then one into ``product_followup``) in the
caller's transaction, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from hub.config._audience import FollowupConfig
from hub.db import bulk_upsert, is_postgres, one_of
from hub.models import AudienceState, Customer, Order, OrderLine, Product, ProductFollowup

__all__ = [
    "STATE",
    "FollowupSummary",
    "Rule",
    "compute_followups",
    "last_computed",
    "not_deleted",
    "read_followups",
]

AntecedentKind = Literal["product", "group"]
#: Pseudo-buyers at the base rate added to every antecedent: the small-sample damping of ``score``.
PRIOR_BUYERS = 10

#: The ``audience_state`` row that says when the rules were last rebuilt and what was found.
STATE = "followups:last"

_followup: sa.Table = ProductFollowup.__table__  # type: ignore[attr-defined]
_state: sa.Table = AudienceState.__table__  # type: ignore[attr-defined]
_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]


def not_deleted(sku: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """True unless the product of ``sku`` is marked deleted (``product.deleted_at``): a candidate filter for the
    recommender's queries. A SKU the product table does not know passes (the ranking leaves it out anyway)."""
    gone = sa.exists().where(_product.c.sku == sku, _product.c.deleted_at.is_not(None)).correlate_except(_product)
    return sa.not_(gone)


class _Epoch(FunctionElement[float]):
    """Seconds since 1970 of a stored timestamp: window arithmetic that reads the same on both dialects."""

    type = sa.Float()
    inherit_cache = True


@compiles(_Epoch)
def _epoch_default(element: _Epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


@compiles(_Epoch, "sqlite")
def _epoch_sqlite(element: _Epoch, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@dataclass(frozen=True, slots=True)
class FollowupSummary:
    """What one rebuild found: rules kept, by kind, and the time it took."""

    products: int
    groups: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of ``product_followup`` as the ranking reads it."""

    kind: AntecedentKind
    antecedent: str
    sku: str
    support: int
    buyers: int
    confidence: float
    lift: float
    score: float

    @property
    def base(self) -> float:
        """The share of all buying customers who bought ``sku``: what the antecedent is compared with."""
        return self.confidence / self.lift


# Work tables of one rebuild, created and dropped inside the caller's transaction. Staged, rather than CTEs of one
# statement, because a planner without statistics (PostgreSQL right after a first load) may re-run an inlined
# CTE once per row of a nested loop: 4 minutes on the demo instead of 2 seconds.
_temp = sa.MetaData()
_purchase = sa.Table(
    "_fu_purchase",
    _temp,
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("sku", sa.String, nullable=False),
    sa.Column("grp", sa.String),
    sa.Column("acc", sa.Boolean, nullable=False),
    sa.Column("t", sa.Float, nullable=False),
    sa.Index("_fu_purchase_customer", "customer_id", "t", "sku"),  # covers the self-join within the window
    prefixes=["TEMPORARY"],
)
_antecedent = sa.Table(
    "_fu_antecedent",
    _temp,
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("antecedent", sa.String, nullable=False),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("t", sa.Float, nullable=False),
    sa.Index("_fu_antecedent_customer", "customer_id"),
    prefixes=["TEMPORARY"],
)
_buyers = sa.Table(
    "_fu_buyers",
    _temp,
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("antecedent", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
_sku_buyers = sa.Table(
    "_fu_sku_buyers",
    _temp,
    sa.Column("sku", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
_WORK_TABLES = (_purchase, _antecedent, _buyers, _sku_buyers)


def _stage(conn: sa.Connection, now: datetime) -> int:
    """Fill the work tables: purchases, antecedents (first purchase of each product and of each group's main
    products, per customer), buyers per antecedent and per SKU. Returns the number of buying customers."""
    owner = sa.func.coalesce(_customer.c.merged_into, _customer.c.id)
    bought = (
        sa.select(
            owner,
            _line.c.sku,
            _product.c.product_group,
            sa.func.coalesce(_product.c.is_accessory, sa.false()),
            _Epoch(_order.c.placed_at),
        )
        .distinct()
        .select_from(
            _line.join(_order, _order.c.id == _line.c.order_id)
            .join(_customer, _customer.c.id == _order.c.customer_id)
            .outerjoin(_product, _product.c.sku == _line.c.sku)
        )
        .where(sa.not_(_order.c.is_return), _order.c.placed_at <= now, _line.c.sku.is_not(None), _line.c.quantity > 0)
    )
    conn.execute(_purchase.insert().from_select(["customer_id", "sku", "grp", "acc", "t"], bought))
    p = _purchase.c
    first_product = sa.select(sa.literal("product"), p.sku, p.customer_id, sa.func.min(p.t)).group_by(
        p.customer_id, p.sku
    )
    first_group = (
        sa.select(sa.literal("group"), p.grp, p.customer_id, sa.func.min(p.t))
        .where(p.grp.is_not(None), sa.not_(p.acc))
        .group_by(p.customer_id, p.grp)
    )
    columns = ["kind", "antecedent", "customer_id", "t"]
    conn.execute(_antecedent.insert().from_select(columns, sa.union_all(first_product, first_group)))
    a = _antecedent.c
    conn.execute(
        _buyers.insert().from_select(
            ["kind", "antecedent", "n"], sa.select(a.kind, a.antecedent, sa.func.count()).group_by(a.kind, a.antecedent)
        )
    )
    per_sku = sa.select(p.sku, sa.func.count(sa.distinct(p.customer_id))).group_by(p.sku)
    conn.execute(_sku_buyers.insert().from_select(["sku", "n"], per_sku))
    if is_postgres(conn):  # temporary tables are never auto-analysed; the final join needs their statistics
        for table in _WORK_TABLES:
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    return int(conn.execute(sa.select(sa.func.count(sa.distinct(p.customer_id)))).scalar_one())


def _followup_select(settings: FollowupConfig, now: datetime, everyone: int) -> sa.Select[Any]:
    """The rules, from the staged work tables: one row per (antecedent, sku) above the thresholds."""
    later_purchase = _purchase.alias("later")
    a, later = _antecedent.c, later_purchase.c
    support = (
        sa.select(a.kind, a.antecedent, later.sku, sa.func.count(sa.distinct(a.customer_id)).label("n"))
        .select_from(
            _antecedent.join(
                later_purchase,
                sa.and_(
                    later.customer_id == a.customer_id,
                    later.t > a.t,
                    later.t <= a.t + settings.window.total_seconds(),
                ),
            )
        )
        .where(sa.not_(sa.and_(a.kind == "product", later.sku == a.antecedent)))
        .group_by(a.kind, a.antecedent, later.sku)
        .having(sa.func.count(sa.distinct(a.customer_id)) >= settings.min_support)
        .subquery("support")
    )
    buyers, sku_buyers = _buyers.c, _sku_buyers.c
    confidence = sa.cast(support.c.n, sa.Float) / buyers.n
    base = sa.cast(sku_buyers.n, sa.Float) / everyone
    lift = confidence / base
    score = (support.c.n - buyers.n * base) / (buyers.n + PRIOR_BUYERS)
    return (
        sa.select(
            support.c.kind,
            support.c.antecedent,
            support.c.sku,
            support.c.n,
            buyers.n,
            confidence,
            lift,
            score,
            sa.literal(now, _followup.c.computed_at.type),
        )
        .select_from(
            support.join(
                _buyers, sa.and_(buyers.kind == support.c.kind, buyers.antecedent == support.c.antecedent)
            ).join(_sku_buyers, sku_buyers.sku == support.c.sku)
        )
        .where(confidence >= settings.min_confidence, lift >= settings.min_lift)
    )


def compute_followups(conn: sa.Connection, settings: FollowupConfig, now: datetime) -> FollowupSummary:
    """Rebuild ``product_followup`` from every order up to ``now``, in the caller's transaction (readers see the
    old rules or the new ones, never half), and note it in ``audience_state`` (:data:`STATE`).

    Four INSERT ... SELECT fill temporary work tables (purchases, antecedents, buyers of each), then one DELETE
    and one INSERT ... SELECT replace the rules.
    """
    started = time.perf_counter()
    # Dropped first in case a failed rebuild on this connection left them; DDL rolls back with the transaction.
    for table in _WORK_TABLES:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    everyone = _stage(conn, now)
    conn.execute(_followup.delete())
    if everyone:
        columns = ("antecedent_kind", "antecedent", "sku", "support", "buyers", "confidence", "lift", "score")
        rules = _followup_select(settings, now, everyone)
        conn.execute(_followup.insert().from_select([*columns, "computed_at"], rules))
    for table in reversed(_WORK_TABLES):
        table.drop(conn)
    query = sa.select(_followup.c.antecedent_kind, sa.func.count()).group_by(_followup.c.antecedent_kind)
    counts = {kind: n for kind, n in conn.execute(query)}
    summary = FollowupSummary(
        products=int(counts.get("product", 0)),
        groups=int(counts.get("group", 0)),
        seconds=time.perf_counter() - started,
    )
    value = {
        "at": now.isoformat(),
        "products": summary.products,
        "groups": summary.groups,
        "seconds": round(summary.seconds, 3),
        "window_days": settings.window.total_seconds() / 86400,
    }
    bulk_upsert(conn, _state, [(STATE, value, now)], ("name", "value", "updated_at"), conflict=("name",))
    return summary


def last_computed(conn: sa.Connection) -> dict[str, Any] | None:
    """What the last rebuild noted (``at``, ``products``, ``groups``, ``seconds``), or None if never built."""
    value = conn.execute(sa.select(_state.c.value).where(_state.c.name == STATE)).scalar()
    return value if isinstance(value, dict) else None


def read_followups(
    conn: sa.Connection,
    kind: AntecedentKind,
    antecedents: Collection[str],
    *,
    per_antecedent: int,
    skip: Sequence[str] = (),
) -> dict[str, list[Rule]]:
    """antecedent -> its best ``per_antecedent`` rules, best first (score, then lift, then SKU): one query.

    ``skip``: SKUs nobody may be recommended (the configured exclusions), left out before the cut, as are the
    follow-ups whose product is marked deleted (the rules themselves keep them: they are evidence, and a product
    loaded again is suggested again without a rebuild).
    """
    wanted = sorted(set(antecedents))
    if not wanted:
        return {}
    f = _followup.c
    rank = (
        sa.func.row_number()
        .over(partition_by=f.antecedent, order_by=(f.score.desc(), f.lift.desc(), f.sku))
        .label("rank")
    )
    conditions = [f.antecedent_kind == kind, one_of(conn, f.antecedent, wanted), not_deleted(f.sku)]
    if skip:
        conditions.append(sa.not_(one_of(conn, f.sku, sorted(set(skip)))))
    ranked = (
        sa.select(f.antecedent, f.sku, f.support, f.buyers, f.confidence, f.lift, f.score, rank)
        .where(*conditions)
        .subquery()
    )
    query = sa.select(ranked).where(ranked.c.rank <= per_antecedent).order_by(ranked.c.antecedent, ranked.c.rank)
    found: dict[str, list[Rule]] = {}
    for row in conn.execute(query):
        found.setdefault(row.antecedent, []).append(
            Rule(kind, row.antecedent, row.sku, row.support, row.buyers, row.confidence, row.lift, row.score)
        )
    return found
