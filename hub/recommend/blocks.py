"""The ``recommendations`` block of trigger payloads: the configured connector where it answers, else the built-in.

``{"source": "<connector>" | "builtin", "items": [{"sku", "name", "price", "product_group", "brand", "score"}]}``.
Candidates are grouped by their trigger's settings (connector, limit, timeout) and each group is asked in one
bounded batch (:func:`hub.recommend.fallback.ask`). What the customer owns or returned, what the order or cart
holds and the configured exclusions travel in every request's ``exclude``, so the connector can honour them;
its answers are filtered by them again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from hub.config._audience import BUILTIN, RecommendationsConfig, RecommendConfig
from hub.connectors import RecommendationRequest, Recommender
from hub.db import one_of
from hub.models import Product
from hub.recommend.builtin import load_histories, load_products, recommend_builtin
from hub.recommend.fallback import Answer, FallbackStats, ask

__all__ = ["Want", "answer", "recommendation_blocks"]

K = TypeVar("K", bound=Hashable)
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Want:
    """One candidate's ask: its settings, customer, the products the suggestions follow and what to leave out."""

    settings: RecommendationsConfig
    customer_id: int | None
    products: Sequence[str] = ()
    exclude: Sequence[str] = ()
    keys: Mapping[str, Any] = field(default_factory=dict)


def _excluded(conn: sa.Connection, settings: RecommendConfig) -> frozenset[str]:
    """The configured exclusions as SKUs (the products of excluded groups included): one query at most."""
    skus = set(settings.exclude.skus)
    groups = sorted(settings.exclude.product_groups)
    if groups:
        query = sa.select(_product.c.sku).where(one_of(conn, _product.c.product_group, groups))
        skus.update(conn.execute(query).scalars())
    return frozenset(skus)


def _item(sku: str, score: float | None, products: Mapping[str, Any]) -> dict[str, Any]:
    info = products.get(sku)
    return {
        "sku": sku,
        "name": info.name if info else None,
        "price": info.price if info else None,
        "product_group": info.group if info else None,
        "brand": info.brand if info else None,
        "score": None if score is None else round(float(score), 4),
    }


def answer(
    conn: sa.Connection,
    wants: Mapping[K, Want],
    now: datetime,
    settings: RecommendConfig,
    recommenders: Mapping[str, Recommender],
    *,
    stats: list[tuple[str, FallbackStats]] | None = None,
) -> dict[K, Answer]:
    """key -> who answered and what. ``recommenders``: the connectors the settings name, by name (a name
    missing there is answered by the built-in). ``stats`` collects (``from``, stats) per batch."""
    wants = {key: want for key, want in wants.items() if want.settings.limit > 0}
    if not wants:
        return {}
    customers = {want.customer_id for want in wants.values() if want.customer_id is not None}
    histories = load_histories(conn, customers, now, settings.followups.window)
    excluded = _excluded(conn, settings)
    by_settings: dict[RecommendationsConfig, dict[K, RecommendationRequest]] = defaultdict(dict)
    for key, want in wants.items():
        history = histories.get(want.customer_id) if want.customer_id is not None else None
        owned = (history.owned | history.returned) if history is not None else set()
        by_settings[want.settings][key] = RecommendationRequest(
            customer_id=want.customer_id,
            products=tuple(dict.fromkeys(want.products)),
            exclude=frozenset(owned | set(want.exclude) | excluded),
            limit=want.settings.limit,
            keys=dict(want.keys),
        )

    answers: dict[K, Answer] = {}
    for options, requests in by_settings.items():
        connector = recommenders.get(options.from_) if options.from_ != BUILTIN else None
        batch = FallbackStats()
        answers.update(
            ask(
                connector,
                requests,
                lambda asked: recommend_builtin(conn, asked, now, settings, histories=histories),
                timeout=options.timeout,
                concurrency=options.concurrency,
                stats=batch,
            )
        )
        if stats is not None:
            stats.append((options.from_, batch))
    return answers


def recommendation_blocks(
    conn: sa.Connection,
    wants: Mapping[K, Want],
    now: datetime,
    settings: RecommendConfig,
    recommenders: Mapping[str, Recommender],
    *,
    stats: list[tuple[str, FallbackStats]] | None = None,
) -> dict[K, dict[str, Any]]:
    """key -> the ``recommendations`` block of its payload (see :func:`answer`)."""
    answers = answer(conn, wants, now, settings, recommenders, stats=stats)
    products = load_products(conn, {item.sku for found in answers.values() for item in found.items})
    return {
        key: {"source": found.source, "items": [_item(item.sku, item.score, products) for item in found.items]}
        for key, found in answers.items()
    }
