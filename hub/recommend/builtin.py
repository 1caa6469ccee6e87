"""The built-in recommender: loads the evidence for a whole batch of requests in a few queries, then ranks each.

Eight queries at most, whatever the batch's size: the customers' purchases, the anchors' products, their
follow-ups and their groups' follow-ups, their PIM accessories, the bestsellers of their groups (and overall
when a customer has bought nothing), how many bought each, and the products of every SKU that came up. The
cascade itself is :func:`hub.recommend.rank.rank`. Products marked deleted (``product.deleted_at``) are left out
of the candidates in those queries (follow-ups, accessories, bestsellers), before any cut, so they never take a
place; a deleted product may still be an anchor (what was bought stays bought).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Hashable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from hub.config._audience import RecommendConfig
from hub.connectors import Recommendation, RecommendationRequest
from hub.db import one_of
from hub.models import Customer, Order, OrderLine, Product, ProductRelation
from hub.recommend.followups import not_deleted, read_followups
from hub.recommend.rank import Evidence, History, ProductInfo, anchors_of, rank

if TYPE_CHECKING:
    from hub.config import HubConfig

__all__ = ["load_histories", "load_products", "recommend_builtin", "settings_of"]

K = TypeVar("K", bound=Hashable)

_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]
_relation: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]

#: Rules, accessories and bestsellers read per anchor beyond the limit, so exclusions rarely empty a tier.
_MARGIN = 20


def settings_of(config: HubConfig) -> RecommendConfig:
    """The ``recommend:`` block of hub.yaml, or its defaults when the configuration has none."""
    settings = getattr(config, "recommend", None)
    return settings if isinstance(settings, RecommendConfig) else RecommendConfig()


def _owner() -> sa.ColumnElement[int]:
    return sa.func.coalesce(_customer.c.merged_into, _customer.c.id)


def _purchased() -> Any:
    return _line.join(_order, _order.c.id == _line.c.order_id).join(_customer, _customer.c.id == _order.c.customer_id)


def load_histories(
    conn: sa.Connection, customer_ids: Collection[int], now: datetime, window: timedelta
) -> dict[int, History]:
    """customer id (a live one) -> what they and the customers merged into them bought and returned: one query.

    ``recent``: SKUs bought within ``window`` before ``now``, latest first; when none, those of the last purchase.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    owner = _owner()
    query = (
        sa.select(owner, _line.c.sku, _order.c.is_return, sa.func.max(_order.c.placed_at))
        .select_from(_purchased())
        .where(
            sa.or_(one_of(conn, _customer.c.id, ids), one_of(conn, _customer.c.merged_into, ids)),
            _line.c.sku.is_not(None),
            _order.c.placed_at <= now,
        )
        .group_by(owner, _line.c.sku, _order.c.is_return)
    )
    histories: dict[int, History] = {customer: History() for customer in ids}
    bought: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for customer, sku, is_return, at in conn.execute(query):
        history = histories.setdefault(customer, History())
        if is_return:
            history.returned.add(sku)
        else:
            history.owned.add(sku)
            bought[customer].append((at, sku))
    for customer, purchases in bought.items():
        purchases.sort(key=lambda item: (item[0], item[1]), reverse=True)
        recent = [sku for at, sku in purchases if at >= now - window]
        histories[customer].recent = recent or [sku for at, sku in purchases if at == purchases[0][0]]
    return histories


def load_products(conn: sa.Connection, skus: Collection[str]) -> dict[str, ProductInfo]:
    """sku -> its product: one query; unknown SKUs are absent."""
    wanted = sorted({sku for sku in skus if sku})
    if not wanted:
        return {}
    p = _product.c
    query = sa.select(p.sku, p.name, p.product_group, p.brand, p.price, p.is_accessory).where(
        one_of(conn, p.sku, wanted)
    )
    return {
        sku: ProductInfo(sku, name, group, brand, None if price is None else float(price), bool(accessory))
        for sku, name, group, brand, price, accessory in conn.execute(query)
    }


def _accessories(conn: sa.Connection, mains: Collection[str]) -> dict[str, list[str]]:
    if not mains:
        return {}
    query = (
        sa.select(_relation.c.sku, _relation.c.related_sku)
        .where(
            _relation.c.kind == "accessory",
            one_of(conn, _relation.c.sku, sorted(mains)),
            not_deleted(_relation.c.related_sku),
        )
        .order_by(_relation.c.id)
    )
    found: dict[str, list[str]] = defaultdict(list)
    for sku, related in conn.execute(query):
        found[sku].append(related)
    return found


def _sold_since(since: datetime, now: datetime) -> tuple[Any, sa.ColumnElement[int], list[Any]]:
    buyers = sa.func.count(sa.distinct(_owner()))
    conditions = [sa.not_(_order.c.is_return), _order.c.placed_at >= since, _order.c.placed_at <= now]
    return _purchased().join(_product, _product.c.sku == _line.c.sku), buyers, conditions


def _popularity(conn: sa.Connection, skus: Collection[str], since: datetime, now: datetime) -> dict[str, int]:
    if not skus:
        return {}
    joined, buyers, conditions = _sold_since(since, now)
    query = (
        sa.select(_line.c.sku, buyers)
        .select_from(joined)
        .where(one_of(conn, _line.c.sku, sorted(skus)), *conditions)
        .group_by(_line.c.sku)
    )
    return {sku: n for sku, n in conn.execute(query)}


def _bestsellers(
    conn: sa.Connection, groups: Collection[str], overall: bool, since: datetime, now: datetime, per: int
) -> tuple[dict[tuple[str | None, bool], list[str]], dict[str, int]]:
    """(group, is_accessory) -> best-selling SKUs (and (None, False) over every group when ``overall``), with
    each one's buyers: one query."""
    if not groups and not overall:
        return {}, {}
    joined, buyers, conditions = _sold_since(since, now)
    p = _product.c
    conditions.append(p.deleted_at.is_(None))
    selects = []
    if groups:
        rank = sa.func.row_number().over(
            partition_by=(p.product_group, p.is_accessory), order_by=(buyers.desc(), _line.c.sku)
        )
        selects.append(
            sa.select(p.product_group.label("grp"), p.is_accessory.label("acc"), _line.c.sku, buyers.label("n"))
            .add_columns(rank.label("rank"))
            .select_from(joined)
            .where(one_of(conn, p.product_group, sorted(groups)), *conditions)
            .group_by(p.product_group, p.is_accessory, _line.c.sku)
        )
    if overall:
        rank = sa.func.row_number().over(order_by=(buyers.desc(), _line.c.sku))
        selects.append(
            sa.select(
                sa.null().label("grp"), sa.false().label("acc"), _line.c.sku, buyers.label("n"), rank.label("rank")
            )
            .select_from(joined)
            .where(*conditions)
            .group_by(_line.c.sku)
        )
    ranked = (selects[0] if len(selects) == 1 else sa.union_all(*selects)).subquery()
    query = sa.select(ranked).where(ranked.c.rank <= per).order_by(ranked.c.grp, ranked.c.acc, ranked.c.rank)
    shelves: dict[tuple[str | None, bool], list[str]] = defaultdict(list)
    counts: dict[str, int] = {}
    for row in conn.execute(query):
        shelves[(row.grp, bool(row.acc))].append(row.sku)
        counts[row.sku] = row.n
    return shelves, counts


def recommend_builtin(
    conn: sa.Connection,
    requests: Mapping[K, RecommendationRequest],
    now: datetime,
    settings: RecommendConfig,
    *,
    histories: Mapping[int, History] | None = None,
) -> dict[K, list[Recommendation]]:
    """The built-in answer to each request, in a few queries for the whole batch (``histories``: the
    customers' purchases when the caller has loaded them already)."""
    if not requests:
        return {}
    window = settings.followups.window
    customers = {r.customer_id for r in requests.values() if r.customer_id is not None}
    if histories is None or not customers <= histories.keys():
        histories = load_histories(conn, customers, now, window)
    anchors = {
        key: anchors_of(request, histories.get(request.customer_id) if request.customer_id is not None else None)
        for key, request in requests.items()
    }
    every_anchor = {sku for skus in anchors.values() for sku in skus}
    products = load_products(conn, every_anchor)
    groups = {info.group for info in products.values() if info.group}
    per = max(request.limit for request in requests.values()) + _MARGIN
    skip = sorted(settings.exclude.skus)
    followups = read_followups(conn, "product", every_anchor, per_antecedent=per, skip=skip)
    group_followups = read_followups(conn, "group", groups, per_antecedent=per, skip=skip)
    accessories = _accessories(conn, every_anchor)
    since = now - settings.bestsellers_window
    shelves, popularity = _bestsellers(conn, groups, any(not skus for skus in anchors.values()), since, now, per)
    related = {sku for skus in accessories.values() for sku in skus}
    popularity.update(_popularity(conn, related - popularity.keys(), since, now))
    mentioned = {rule.sku for rules in (*followups.values(), *group_followups.values()) for rule in rules}
    mentioned |= related | {sku for skus in shelves.values() for sku in skus}
    products.update(load_products(conn, mentioned - products.keys()))
    evidence = Evidence(
        products=products,
        followups=followups,
        group_followups=group_followups,
        accessories=accessories,
        popularity=popularity,
        bestsellers=shelves,
        window=window,
        bestsellers_window=settings.bestsellers_window,
        excluded_groups=frozenset(settings.exclude.product_groups),
        excluded_skus=frozenset(settings.exclude.skus),
    )
    return {
        key: rank(request, histories.get(request.customer_id) if request.customer_id is not None else None, evidence)
        for key, request in requests.items()
    }
