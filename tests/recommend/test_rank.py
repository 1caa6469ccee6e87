"""The ranking cascade over any evidence: never a forbidden product, tiers in order, nothing allowed left out."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from hub.connectors import RecommendationRequest
from hub.recommend.followups import Rule
from hub.recommend.rank import Evidence, History, ProductInfo, anchors_of, rank

SKUS = [f"S{i}" for i in range(16)]
GROUPS = ["a", "b", "c"]
TIERS = ("bought next", "bought next", "accessory of", "bestseller")

sku = st.sampled_from(SKUS)
skus = st.sets(sku, max_size=6)


@st.composite
def rules(draw: st.DrawFn, kind: str, antecedents: list[str]) -> dict[str, list[Rule]]:
    found: dict[str, list[Rule]] = {}
    for antecedent in draw(st.sets(st.sampled_from(antecedents), max_size=len(antecedents))):
        for target in draw(skus):
            buyers = draw(st.integers(1, 50))
            support = draw(st.integers(1, buyers))
            lift = draw(st.floats(1.0, 20.0))
            score = draw(st.floats(0.0, 1.0))
            found.setdefault(antecedent, []).append(
                Rule(kind, antecedent, target, support, buyers, support / buyers, lift, score)  # type: ignore[arg-type]
            )
    return found


@st.composite
def evidence(draw: st.DrawFn) -> Evidence:
    known = draw(st.sets(sku, min_size=4))
    products = {
        s: ProductInfo(s, s.lower(), draw(st.sampled_from([*GROUPS, None])), None, None, draw(st.booleans()))
        for s in known
    }
    shelves = {
        (group, accessory): draw(st.lists(sku, unique=True, max_size=5))
        for group in [*GROUPS, None]
        for accessory in (True, False)
    }
    return Evidence(
        products=products,
        followups=draw(rules("product", SKUS)),
        group_followups=draw(rules("group", GROUPS)),
        accessories={s: draw(st.lists(sku, unique=True, max_size=4)) for s in draw(skus)},
        popularity={s: draw(st.integers(0, 100)) for s in draw(skus)},
        bestsellers=shelves,
        window=timedelta(days=90),
        bestsellers_window=timedelta(days=365),
        excluded_groups=frozenset(draw(st.sets(st.sampled_from(GROUPS), max_size=1))),
        excluded_skus=frozenset(draw(st.sets(sku, max_size=2))),
    )


histories = st.builds(History, owned=skus, returned=skus, recent=st.lists(sku, unique=True, max_size=4)) | st.none()
requests = st.builds(
    RecommendationRequest,
    customer_id=st.just(1),
    products=st.lists(sku, unique=True, max_size=3).map(tuple),
    exclude=st.frozensets(sku, max_size=3),
    limit=st.integers(0, 8),
)


def forbidden(request: RecommendationRequest, history: History | None, found: Evidence) -> set[str]:
    blocked = set(anchors_of(request, history)) | set(request.exclude) | set(found.excluded_skus)
    if history is not None:
        blocked |= history.owned | history.returned
    blocked |= {s for s in SKUS if s not in found.products or found.products[s].group in found.excluded_groups}
    return blocked


def tier(reason: str) -> int:
    if reason.startswith("bought next") and " buyers of " in reason:
        return 0
    if reason.startswith("bought next"):
        return 1
    return 2 if reason.startswith("accessory of") else 3


@given(request=requests, history=histories, found=evidence())
def test_nothing_forbidden_no_duplicates_and_at_most_the_limit(
    request: RecommendationRequest, history: History | None, found: Evidence
) -> None:
    got = [item.sku for item in rank(request, history, found)]
    assert len(got) == len(set(got)) <= request.limit
    assert not set(got) & forbidden(request, history, found)


@given(request=requests, history=histories, found=evidence())
def test_follow_ups_come_before_group_follow_ups_before_accessories_before_bestsellers(
    request: RecommendationRequest, history: History | None, found: Evidence
) -> None:
    tiers = [tier(item.reason) for item in rank(request, history, found)]
    assert tiers == sorted(tiers)


@given(request=requests, history=histories, found=evidence())
def test_a_short_list_means_every_allowed_follow_up_and_accessory_is_in_it(
    request: RecommendationRequest, history: History | None, found: Evidence
) -> None:
    got = {item.sku for item in rank(request, history, found)}
    if len(got) == request.limit:
        return
    anchors = anchors_of(request, history)
    groups = {found.products[a].group for a in anchors if a in found.products}
    offered = {rule.sku for a in anchors for rule in found.followups.get(a, ())}
    offered |= {rule.sku for g in groups for rule in found.group_followups.get(g, ())}
    offered |= {s for a in anchors for s in found.accessories.get(a, ())}
    assert offered - forbidden(request, history, found) <= got
