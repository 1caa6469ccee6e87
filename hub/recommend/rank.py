"""The ranking cascade of the built-in recommender, over evidence already loaded (no SQL here).

For one request, the anchors are the request's products (an order's lines, a cart's items) or, for a customer
alone, what they bought lately. Suggestions are taken in this order until ``limit`` is reached:

1. follow-ups of the anchor products (``product_followup``, kind ``product``), best score first;
2. follow-ups of the anchors' product groups (kind ``group``);
3. accessories of the anchors from the PIM (``product_relation`` kind ``accessory``), most bought first;
4. bestsellers of the anchors' groups (only accessories of a group whose main product is an anchor: nobody
   wants a second grill suggested after the first); for a customer with no purchases, the overall bestsellers.

Never suggested: what the customer owns (bought and not as a return) or returned, the anchors, the request's
``exclude``, the configured exclusions, SKUs the product table does not know, and products marked deleted (the
evidence is loaded without them, :mod:`hub.recommend.builtin`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from hub.connectors import Recommendation, RecommendationRequest
from hub.recommend.followups import Rule

__all__ = ["Evidence", "History", "ProductInfo", "anchors_of", "duration", "rank"]


@dataclass(frozen=True, slots=True)
class ProductInfo:
    sku: str
    name: str | None
    group: str | None
    brand: str | None
    price: float | None
    is_accessory: bool

    @property
    def label(self) -> str:
        return self.name or self.sku


@dataclass(slots=True)
class History:
    """A customer's purchases: SKUs owned and returned, and the ones bought lately, latest first."""

    owned: set[str] = field(default_factory=set)
    returned: set[str] = field(default_factory=set)
    recent: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Evidence:
    """Everything the cascade reads, loaded for a whole batch of requests."""

    products: dict[str, ProductInfo]
    followups: Mapping[str, Sequence[Rule]]
    group_followups: Mapping[str, Sequence[Rule]]
    #: main SKU -> its accessories, in the PIM's order.
    accessories: Mapping[str, Sequence[str]]
    #: SKU -> customers who bought it within the bestsellers window.
    popularity: Mapping[str, int]
    #: (group, is_accessory) -> SKUs best-selling first; (None, False): over every group.
    bestsellers: Mapping[tuple[str | None, bool], Sequence[str]]
    window: timedelta
    bestsellers_window: timedelta
    excluded_groups: frozenset[str] = frozenset()
    excluded_skus: frozenset[str] = frozenset()


def duration(span: timedelta) -> str:
    """``90d``, ``36h``: a window as hub.yaml writes it."""
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


def anchors_of(request: RecommendationRequest, history: History | None) -> list[str]:
    """What the suggestions follow: the request's products, else what the customer bought lately."""
    if request.products:
        return list(dict.fromkeys(request.products))
    return list(history.recent) if history is not None else []


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"


def _followup_reason(rule: Rule, buyers_of: str, window: timedelta) -> str:
    return (
        f"bought next by {_percent(rule.confidence)} ({rule.support} of {rule.buyers}) of {buyers_of} "
        f"within {duration(window)}, lift {rule.lift:.1f}"
    )


def _best_rules(rules: Iterable[Rule]) -> list[Rule]:
    """One rule per SKU (its best), best score first."""
    best: dict[str, Rule] = {}
    for rule in rules:
        if rule.sku not in best or rule.score > best[rule.sku].score:
            best[rule.sku] = rule
    return sorted(best.values(), key=lambda r: (-r.score, -r.lift, r.sku))


def rank(request: RecommendationRequest, history: History | None, evidence: Evidence) -> list[Recommendation]:
    """Up to ``request.limit`` suggestions for one request, in cascade order, each with its score and reason."""
    if request.limit <= 0:
        return []
    anchors = anchors_of(request, history)
    products = evidence.products
    skip = set(anchors) | set(request.exclude) | evidence.excluded_skus
    if history is not None:
        skip |= history.owned | history.returned
    chosen: dict[str, Recommendation] = {}

    def offer(sku: str, score: float | None, reason: str) -> bool:
        """Take ``sku`` if allowed; True once the list is full."""
        info = products.get(sku)
        if sku in chosen or sku in skip or info is None or info.group in evidence.excluded_groups:
            return len(chosen) >= request.limit
        chosen[sku] = Recommendation(sku=sku, score=score, reason=reason)
        return len(chosen) >= request.limit

    known = [products[sku] for sku in anchors if sku in products]
    groups = list(dict.fromkeys(info.group for info in known if info.group))

    for rule in _best_rules(rule for sku in anchors for rule in evidence.followups.get(sku, ())):
        label = products[rule.antecedent].label if rule.antecedent in products else rule.antecedent
        if offer(rule.sku, rule.score, _followup_reason(rule, f"buyers of {label}", evidence.window)):
            return list(chosen.values())
    for rule in _best_rules(rule for group in groups for rule in evidence.group_followups.get(group, ())):
        if offer(rule.sku, rule.score, _followup_reason(rule, f"{rule.antecedent} buyers", evidence.window)):
            return list(chosen.values())

    related: dict[str, str] = {}
    for sku in anchors:
        for accessory in evidence.accessories.get(sku, ()):
            related.setdefault(accessory, sku)
    order = {sku: index for index, sku in enumerate(related)}
    for accessory in sorted(related, key=lambda sku: (-evidence.popularity.get(sku, 0), order[sku])):
        main = products[related[accessory]].label if related[accessory] in products else related[accessory]
        bought = evidence.popularity.get(accessory, 0)
        reason = f"accessory of {main} (PIM), bought by {bought} customers in {duration(evidence.bestsellers_window)}"
        if offer(accessory, None, reason):
            return list(chosen.values())

    mains = {info.group for info in known if not info.is_accessory}
    shelves: list[tuple[str | None, bool]] = [(group, True) for group in groups]
    shelves += [(group, False) for group in groups if group not in mains]
    if not anchors:
        shelves.append((None, False))
    for group, accessories in shelves:
        for sku in evidence.bestsellers.get((group, accessories), ()):
            where = "overall" if group is None else f"in {group}{' accessories' if accessories else ''}"
            bought = evidence.popularity.get(sku, 0)
            reason = f"bestseller {where}: bought by {bought} customers in {duration(evidence.bestsellers_window)}"
            if offer(sku, None, reason):
                return list(chosen.values())
    return list(chosen.values())
