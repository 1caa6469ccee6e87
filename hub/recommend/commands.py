"""``hub recommend CUSTOMER`` and ``hub recommend --product SKU``: the ranking, and why each product is in it.

No ``from __future__ import annotations`` here: typer reads the options' annotations at run time.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table

from hub.audience.commands import NowOption, parse_now
from hub.clock import FixedClock

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.recommend.fallback import Answer


def add_commands(cli: typer.Typer) -> None:
    from hub.cli import ConfigOption, _fail, _load, console

    @cli.command("recommend")
    def recommend_command(
        customer: Annotated[
            str | None, typer.Argument(help="customer id, e-mail, member number or phone", show_default=False)
        ] = None,
        product: Annotated[
            str | None, typer.Option("--product", "-p", help="what buyers of this SKU get next, instead")
        ] = None,
        config: ConfigOption = None,
        limit: Annotated[int, typer.Option(help="products to show", min=1)] = 10,
        source: Annotated[
            str | None,
            typer.Option("--from", help="ask this recommender connector first; the built-in answers if it cannot"),
        ] = None,
        now: NowOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="the ranking as JSON")] = False,
    ) -> None:
        """What the built-in recommender (or --from a connector) suggests to a customer, or after a product."""
        import json

        from hub.audience.explain import resolve_customer
        from hub.recommend.builtin import load_products

        if (customer is None) == (product is None):
            raise _fail("give a customer, or --product SKU (not both)")
        hub = _load(config)
        try:
            hub.ensure_schema()
            if now is not None:
                hub.clock = FixedClock(parse_now(now, hub.config.timezone))
            with hub.engine.connect() as conn:
                if product is not None and not load_products(conn, [product]):
                    raise _fail(f"no product with SKU {product!r}")
                customer_id = None
                if customer is not None:
                    customer_id = resolve_customer(conn, customer)
                    if customer_id is None:
                        raise _fail(f"no customer matches {customer!r} (try an id, e-mail, member number or phone)")
                result = _recommend(hub, conn, customer_id, product, limit, source)
        finally:
            hub.close()
        if as_json:
            typer.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
            return
        _print(console, result)


def _recommend(
    hub: "Hub", conn: sa.Connection, customer_id: int | None, product: str | None, limit: int, source: str | None
) -> dict[str, Any]:
    """Ask, and gather what the output shows: who was asked about, what the ranking follows, the ranking."""
    from hub.config._audience import BUILTIN, RecommendationsConfig
    from hub.errors import ConfigError
    from hub.recommend.blocks import Want, answer
    from hub.recommend.builtin import load_histories, load_products, settings_of
    from hub.recommend.connectors import recommender
    from hub.recommend.fallback import FallbackStats
    from hub.recommend.followups import last_computed
    from hub.recommend.rank import anchors_of, duration

    now = hub.clock.now()
    settings = settings_of(hub.config)
    defaults = settings.triggers or RecommendationsConfig()
    name = source or BUILTIN
    options = RecommendationsConfig(from_=name, limit=limit, timeout=defaults.timeout, concurrency=defaults.concurrency)
    recommenders = {}
    if name != BUILTIN:
        if name not in hub.config.connectors:
            known = ", ".join(sorted(hub.config.connectors)) or "none"
            raise ConfigError(f"no connector named {name!r} in {hub.config.source_file} (configured: {known})")
        recommenders[name] = recommender(hub, name)
    keys: dict[str, Any] = {}
    if customer_id is not None:
        from hub.delivery.views import customer_views, hub_keys

        views = customer_views(conn, [customer_id])
        keys = hub_keys(views[customer_id]) if customer_id in views else {}
    products = (product,) if product is not None else ()
    stats: list[tuple[str, FallbackStats]] = []
    found: Answer = answer(
        conn,
        {0: Want(settings=options, customer_id=customer_id, products=products, keys=keys)},
        now,
        settings,
        recommenders,
        stats=stats,
    )[0]
    history = load_histories(conn, [customer_id], now, settings.followups.window) if customer_id else {}
    anchors = anchors_of(_request(customer_id, products), history.get(customer_id) if customer_id is not None else None)
    info = load_products(conn, {*anchors, *(item.sku for item in found.items)})
    return {
        "customer": _customer_line(conn, customer_id) if customer_id is not None else None,
        "product": product,
        "now": now,
        "follows": [{"sku": sku, "name": info[sku].name if sku in info else None} for sku in anchors],
        "window": duration(settings.followups.window),
        "source": found.source,
        "fallback": found.fallback,
        "seconds": stats[0][1].seconds if stats else None,
        "items": [
            {
                "rank": rank,
                "sku": item.sku,
                "name": info[item.sku].name if item.sku in info else None,
                "product_group": info[item.sku].group if item.sku in info else None,
                "score": item.score,
                "reason": item.reason,
            }
            for rank, item in enumerate(found.items, 1)
        ],
        "followups": last_computed(conn),
    }


def _request(customer_id: int | None, products: tuple[str, ...]) -> Any:
    from hub.connectors import RecommendationRequest

    return RecommendationRequest(customer_id=customer_id, products=products)


def _customer_line(conn: sa.Connection, customer_id: int) -> str:
    from hub.models import Customer

    c = Customer.__table__.c  # type: ignore[attr-defined]
    row = conn.execute(sa.select(c.first_name, c.last_name, c.email).where(c.id == customer_id)).one()
    name = " ".join(part for part in (row.first_name, row.last_name) if part)
    return f"customer {customer_id}" + (f": {name}" if name else "") + (f" <{row.email}>" if row.email else "")


def _when(value: Any) -> str:
    try:
        return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M}"
    except (TypeError, ValueError):
        return str(value)


def _print(console: Any, result: dict[str, Any]) -> None:
    who = result["customer"] or f"buyers of {result['product']}"
    console.print(f"recommendations for {who}, at {result['now']:%Y-%m-%d %H:%M} UTC", highlight=False)
    follows = result["follows"]
    if follows:
        shown = ", ".join(f"{f['sku']} {f['name'] or ''}".strip() for f in follows[:6])
        more = f" and {len(follows) - 6} more" if len(follows) > 6 else ""
        console.print(f"following: {shown}{more}", highlight=False)
    elif result["customer"]:
        console.print("following: nothing (no purchases): the bestsellers", highlight=False)
    table = Table("#", "sku", "name", "score", "reason", title=f"answered by {result['source']}")
    for item in result["items"]:
        score = "-" if item["score"] is None else f"{item['score']:.3f}"
        table.add_row(str(item["rank"]), item["sku"], item["name"] or "-", score, item["reason"] or "-")
    console.print(table)
    if result["fallback"]:
        console.print(f"the built-in answered: the connector's call ended in {result['fallback']}", highlight=False)
    computed = result["followups"]
    if computed is None:
        console.print("no follow-up rules yet: run `hub compute --full` (or `hub audience`)", highlight=False)
    else:
        console.print(
            f"follow-up rules of {_when(computed.get('at'))}: {computed.get('products', 0):,} product and "
            f"{computed.get('groups', 0):,} group rules (bought next within {result['window']})",
            highlight=False,
        )
