"""Triggers: events and dates that make candidate messages, and the preparation of the due ones.

:func:`fire_triggers` looks, per trigger, at what happened since its watermark (an ``audience_state`` row named
``trigger:<name>``) and inserts one ``audience_candidate`` per event, keyed so that the same event can never make
two candidates (``INSERT ... ON CONFLICT (key) DO NOTHING``): running it twice, or after a crash between the insert
and the watermark, creates nothing new. Every kind is one or two set-based queries for all its customers.

An event older than the trigger's ``max_age`` at ``now`` fires nothing, so the first run over years of history (or a
run after a long stop) does not mail last year's buyers. Order, segment-change and product-event watermarks are ids;
an id whose event lies after ``now`` holds the watermark back, so a clock moved forward (tests, ``--now``) still sees
it later. The stock and price triggers live in :mod:`hub.audience.product_triggers`.

:func:`prepare_due` makes a batch of due candidates ready for contact pressure: it reads the customers, their
attributes, orders, carts and accessory purchases with one query per table for the whole batch, then picks each
candidate's branch and variant and builds its payload (:mod:`hub.audience.payloads`) and destination views.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from croniter import croniter

from hub.audience.payloads import (
    CLOSED_CART_STATUSES,
    build_payload,
    cart_items,
    customer_block,
    load_carts,
    load_orders,
    recommend_accessories,
)
from hub.audience.product_triggers import ProductContext, product_candidates, product_contexts
from hub.audience.types import AttributeSpec, Prepared
from hub.audience.variants import assign_variants
from hub.config._audience import PRODUCT_TRIGGERS
from hub.db import UTCDateTime, bulk_upsert, is_postgres, one_of
from hub.delivery.views import customer_views, hub_keys, survivors
from hub.models import (
    AudienceCandidate,
    AudienceState,
    Cart,
    Customer,
    CustomerAttributes,
    Event,
    Order,
    OrderLine,
    Product,
    ProductEvent,
    ProductRelation,
    SegmentChange,
    SegmentMembership,
)

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.config._audience import RecommendationsConfig, TriggerConfig
    from hub.connectors import Recommender

__all__ = [
    "CLOSED_CART_STATUSES",
    "accessory_purchases",
    "fire_triggers",
    "prepare_due",
    "recommendation_settings",
    "state_name",
]

_candidate: sa.Table = AudienceCandidate.__table__  # type: ignore[attr-defined]
_state: sa.Table = AudienceState.__table__  # type: ignore[attr-defined]
_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_attributes: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]
_relation: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
_cart: sa.Table = Cart.__table__  # type: ignore[attr-defined]
_event: sa.Table = Event.__table__  # type: ignore[attr-defined]
_change: sa.Table = SegmentChange.__table__  # type: ignore[attr-defined]
_membership: sa.Table = SegmentMembership.__table__  # type: ignore[attr-defined]
_product_event: sa.Table = ProductEvent.__table__  # type: ignore[attr-defined]
_COLUMNS = ("key", "trigger", "message_type", "customer_id", "ref", "facts", "fired_at", "due_at", "status")
_DAY = timedelta(days=1)

Row = tuple[Any, ...]


def state_name(trigger: str) -> str:
    """The ``audience_state`` row holding a trigger's watermark."""
    return f"trigger:{trigger}"


# -- firing -----------------------------------------------------------------------------------------------------------


def fire_triggers(
    conn: sa.Connection,
    config: HubConfig,
    now: datetime,
    *,
    plugin_attributes: Mapping[str, AttributeSpec] | None = None,
) -> dict[str, int]:
    """Insert the candidates of every trigger's new events; returns trigger name -> candidates created.

    Runs in the caller's transaction: the candidates and the advanced watermarks commit together.
    """
    _aware(now)
    names = [state_name(name) for name in config.triggers]
    query = sa.select(_state.c.name, _state.c.value).where(_state.c.name.in_(names))
    stored = {name: value for name, value in conn.execute(query)} if names else {}
    zone = ZoneInfo(config.timezone)
    created: dict[str, int] = {}
    states: list[Row] = []
    for name, trigger in config.triggers.items():
        state = stored.get(state_name(name))
        fire = _FIRE[trigger.on]
        where = _where(trigger, now, plugin_attributes or {})
        rows, new_state = fire(conn, trigger, now, state if isinstance(state, dict) else {}, where, zone)
        created[name] = _insert(conn, rows)
        states.append((state_name(name), new_state, now))
    if states:
        bulk_upsert(conn, _state, states, ("name", "value", "updated_at"), conflict=("name",))
    return created


def _aware(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def _insert(conn: sa.Connection, rows: Sequence[Row]) -> int:
    if not rows:
        return 0
    return bulk_upsert(conn, _candidate, rows, _COLUMNS, conflict=("key",), update=())


def _where(trigger: TriggerConfig, now: datetime, specs: Mapping[str, AttributeSpec]) -> sa.Select[Any] | None:
    """``SELECT customer.id`` of the live customers the trigger's ``where`` admits, or None without one."""
    if trigger.where is None:
        return None
    from hub.audience.expressions import customer_select, parse

    return customer_select(parse(trigger.where, context="segment"), now, plugin_attributes=specs)


def _candidate_row(
    trigger: TriggerConfig,
    customer_id: int,
    suffix: str,
    ref: str | None,
    facts: dict[str, Any],
    fired_at: datetime,
    now: datetime,
) -> Row:
    due = max(now, fired_at + (trigger.delay or timedelta(0)))
    key = f"{trigger.name}:{customer_id}:{suffix}"
    return (key, trigger.name, trigger.message_type, customer_id, ref, facts, fired_at, due, "waiting")


def _owner() -> sa.ColumnElement[int]:
    """The live customer a row of ``customer`` is: itself, or the survivor it was merged into."""
    return sa.func.coalesce(_customer.c.merged_into, _customer.c.id)


def _admitted(column: sa.ColumnElement[Any], where: sa.Select[Any] | None) -> list[sa.ColumnElement[bool]]:
    return [] if where is None else [column.in_(where)]


def _advance(
    conn: sa.Connection, table: sa.Table, at: sa.ColumnElement[Any], after: int, now: datetime, *conditions: Any
) -> int:
    """The new id watermark: the highest id seen, but never past an id whose time lies after ``now``."""
    future = sa.case((at > now, table.c.id))
    query = sa.select(sa.func.max(table.c.id), sa.func.min(future)).where(table.c.id > after, *conditions)
    highest, first_future = conn.execute(query).one()
    if first_future is not None:
        return int(first_future) - 1
    return int(highest) if highest is not None else after


def _order_value() -> sa.ColumnElement[Any]:
    lines = sa.select(sa.func.sum(_line.c.line_total)).where(_line.c.order_id == _order.c.id).scalar_subquery()
    return sa.func.coalesce(_order.c.total, lines)


def _line_conditions(trigger: TriggerConfig) -> list[sa.ColumnElement[bool]]:
    wanted = trigger.filter
    conditions = []
    if wanted.product_groups:
        conditions.append(_product.c.product_group.in_(wanted.product_groups))
    if wanted.brands:
        conditions.append(_product.c.brand.in_(wanted.brands))
    return conditions


def _order_placed(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """Orders (not returns) since the watermark, placed within ``max_age``, matching the filter and ``where``.

    Product groups and brands match on one line: "a Weber grill" is a line of group grills and brand Weber.
    """
    after = int(state.get("order_id") or 0)
    wanted = trigger.filter
    owner = _owner()
    value = _order_value()
    conditions: list[Any] = [
        _order.c.id > after,
        sa.not_(_order.c.is_return),
        _order.c.placed_at >= now - trigger.max_age,
        _order.c.placed_at <= now,
        *_admitted(owner, where),
    ]
    line_conditions = _line_conditions(trigger)
    if line_conditions:
        conditions.append(
            sa.exists()
            .select_from(_line.join(_product, _product.c.sku == _line.c.sku))
            .where(_line.c.order_id == _order.c.id, *line_conditions)
        )
    if wanted.campaigns:
        conditions.append(_order.c.campaign.in_(wanted.campaigns))
    if wanted.channels:
        conditions.append(_order.c.channel.in_(wanted.channels))
    if wanted.min_total is not None:
        conditions.append(value >= wanted.min_total)
    query = (
        sa.select(_order.c.id, owner, _order.c.placed_at, value, _order.c.channel)
        .select_from(_order.join(_customer, _customer.c.id == _order.c.customer_id))
        .where(*conditions)
    )
    found = list(conn.execute(query))
    groups: dict[int, list[str]] = defaultdict(list)
    if found:
        group_query = (
            sa.select(_line.c.order_id, _product.c.product_group)
            .distinct()
            .select_from(_line.join(_product, _product.c.sku == _line.c.sku))
            .where(
                one_of(conn, _line.c.order_id, [row[0] for row in found]),
                _product.c.product_group.is_not(None),
                *line_conditions,
            )
            .order_by(_line.c.order_id, _product.c.product_group)
        )
        for order_id, group in conn.execute(group_query):
            groups[order_id].append(group)
    rows = [
        _candidate_row(
            trigger,
            customer_id,
            f"order:{order_id}",
            str(order_id),
            {
                "order_id": order_id,
                "product_groups": groups.get(order_id, []),
                "order_total": None if total is None else float(total),
                "channel": channel,
            },
            placed_at,
            now,
        )
        for order_id, customer_id, placed_at, total, channel in found
    ]
    return rows, {"order_id": _advance(conn, _order, _order.c.placed_at, after, now)}


def _cart_abandoned(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """Carts of a customer, untouched for ``after``, not closed, not empty, with no order by the customer since.

    The candidate's time is the moment the cart counted as abandoned (``updated_at + after``); a cart changed
    again gets a new key, so it can fire again.
    """
    quiet_since = now - trigger.after
    owner = _owner()
    ordered_since = sa.exists().where(
        sa.or_(_order.c.customer_id == _cart.c.customer_id, _order.c.customer_id == owner),
        _order.c.placed_at > _cart.c.updated_at,
        sa.not_(_order.c.is_return),
    )
    status = sa.func.lower(_cart.c.status)
    query = (
        sa.select(_cart.c.id, owner, _cart.c.updated_at, _cart.c.items_json, _cart.c.total)
        .select_from(_cart.join(_customer, _customer.c.id == _cart.c.customer_id))
        .where(
            _cart.c.updated_at <= quiet_since,
            _cart.c.updated_at >= quiet_since - trigger.max_age,
            sa.or_(_cart.c.status.is_(None), status.not_in(CLOSED_CART_STATUSES)),
            sa.not_(ordered_since),
            *_admitted(owner, where),
        )
    )
    found = [row for row in conn.execute(query) if cart_items(row.items_json)]
    products = _product_groups(conn, {str(item.get("sku")) for row in found for item in cart_items(row.items_json)})
    wanted = trigger.filter
    rows = []
    for cart_id, customer_id, updated_at, items, total in found:
        lines = [products.get(str(item.get("sku")), (None, None)) for item in cart_items(items)]
        matching = [
            group
            for group, brand in lines
            if (not wanted.product_groups or group in wanted.product_groups)
            and (not wanted.brands or brand in wanted.brands)
        ]
        if (wanted.product_groups or wanted.brands) and not matching:
            continue
        if wanted.min_total is not None and (total is None or float(total) < wanted.min_total):
            continue
        facts = {
            "cart_id": cart_id,
            "updated_at": updated_at.isoformat(),
            "product_groups": sorted({group for group in matching if group}),
            "cart_total": None if total is None else float(total),
        }
        suffix = f"cart:{cart_id}:{updated_at.isoformat()}"
        rows.append(_candidate_row(trigger, customer_id, suffix, str(cart_id), facts, updated_at + trigger.after, now))
    return rows, {"at": now.isoformat()}


def _product_groups(conn: sa.Connection, skus: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
    wanted = sorted(skus)
    if not wanted:
        return {}
    query = sa.select(_product.c.sku, _product.c.product_group, _product.c.brand).where(
        one_of(conn, _product.c.sku, wanted)
    )
    return {sku: (group, brand) for sku, group, brand in conn.execute(query)}


def _segment_change(change: str) -> Any:
    def fire(
        conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
    ) -> tuple[list[Row], dict[str, Any]]:
        """``segment_change`` rows of the segment past the watermark: one candidate per change."""
        after = int(state.get("change_id") or 0)
        query = (
            sa.select(_change.c.id, _change.c.customer_id, _change.c.at)
            .select_from(_change.join(_customer, _customer.c.id == _change.c.customer_id))
            .where(
                _change.c.id > after,
                _change.c.segment == trigger.segment,
                _change.c.change == change,
                _change.c.initial.is_(False),  # a segment's first evaluation: they were already in
                _change.c.at >= now - trigger.max_age,
                _change.c.at <= now,
                _customer.c.merged_into.is_(None),
                *_admitted(_change.c.customer_id, where),
            )
        )
        rows = [
            _candidate_row(
                trigger,
                customer_id,
                f"change:{change_id}",
                str(change_id),
                {"segment": trigger.segment, "change": change, "change_id": change_id},
                at,
                now,
            )
            for change_id, customer_id, at in conn.execute(query)
        ]
        new = _advance(conn, _change, _change.c.at, after, now, _change.c.segment == trigger.segment)
        return rows, {"change_id": new}

    return fire


def _days_to_fire(trigger: TriggerConfig, now: datetime, state: dict[str, Any], zone: ZoneInfo) -> list[date]:
    """The local dates a date trigger still has to look at: today on a first run, else the days since the last
    date it looked at, but none older than ``max_age``."""
    today = now.astimezone(zone).date()
    last = state.get("date")
    if not isinstance(last, str):
        return [today]
    start = max(date.fromisoformat(last) + _DAY, today - timedelta(days=trigger.max_age // _DAY))
    return [start + timedelta(days=n) for n in range((today - start).days + 1)]


def _month_days(days: Iterable[date]) -> dict[str, date]:
    """'MM-DD' -> the date it falls on among ``days``; 29 February falls on the 28th in a common year."""
    found: dict[str, date] = {}
    for day in days:
        found[day.strftime("%m-%d")] = day
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            found["02-29"] = day
    return found


def _month_day(conn: sa.Connection, column: sa.ColumnElement[Any], *, utc: bool = False) -> sa.ColumnElement[str]:
    if is_postgres(conn):
        return sa.func.to_char(sa.func.timezone("UTC", column) if utc else column, "MM-DD")
    return sa.func.strftime("%m-%d", column)


def _on_day(when: date, day: date) -> bool:
    """True when an anniversary of ``when`` falls on ``day`` (29 February on the 28th in a common year)."""
    if (when.month, when.day) == (day.month, day.day):
        return True
    return (when.month, when.day) == (2, 29) and (day.month, day.day) == (2, 28) and not calendar.isleap(day.year)


def _birthday(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """Live customers whose birthday is today in the hub's timezone: one candidate per customer and year."""
    days = _days_to_fire(trigger, now, state, zone)
    today = now.astimezone(zone).date()
    rows: list[Row] = []
    if days:
        month_days = _month_days(days)
        month_day = _month_day(conn, _customer.c.birth_date)
        query = sa.select(_customer.c.id, _customer.c.birth_date).where(
            _customer.c.merged_into.is_(None),
            _customer.c.birth_date.is_not(None),
            month_day.in_(sorted(month_days)),
            *_admitted(_customer.c.id, where),
        )
        for customer_id, born in conn.execute(query):
            day = month_days[born.strftime("%m-%d")]
            facts = {"date": day.isoformat(), "age": day.year - born.year}
            rows.append(_candidate_row(trigger, customer_id, str(day.year), day.isoformat(), facts, now, now))
    return rows, {"date": today.isoformat()}


def _first_order_anniversary(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """Customers whose first order (in the hub's timezone) was on this month and day, a year or more ago.

    SQL narrows by the UTC month and day (a day either side covers any timezone); Python decides locally.
    """
    days = _days_to_fire(trigger, now, state, zone)
    today = now.astimezone(zone).date()
    rows: list[Row] = []
    if days:
        near = _month_days(day + timedelta(days=shift) for day in days for shift in (-1, 0, 1))
        query = (
            sa.select(_attributes.c.customer_id, _attributes.c.first_order_at)
            .select_from(_attributes.join(_customer, _customer.c.id == _attributes.c.customer_id))
            .where(
                _customer.c.merged_into.is_(None),
                _attributes.c.first_order_at.is_not(None),
                _month_day(conn, _attributes.c.first_order_at, utc=True).in_(sorted(near)),
                *_admitted(_attributes.c.customer_id, where),
            )
        )
        for customer_id, first in conn.execute(query):
            local = first.astimezone(zone).date()
            for day in days:
                years = day.year - local.year
                if years >= 1 and _on_day(local, day):
                    facts = {"date": day.isoformat(), "years": years, "first_order_at": first.isoformat()}
                    rows.append(_candidate_row(trigger, customer_id, str(day.year), day.isoformat(), facts, now, now))
    return rows, {"date": today.isoformat()}


def _days_since(conn: sa.Connection, column: sa.ColumnElement[Any], now: datetime) -> sa.ColumnElement[float]:
    moment = sa.literal(now, UTCDateTime())
    if is_postgres(conn):
        return sa.extract("epoch", moment - column) / 86400.0
    return sa.func.julianday(moment) - sa.func.julianday(column)


def _win_back(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """Customers with a rhythm (``min_orders``) overdue by ``factor`` times their own mean days between
    purchases: once per lapse (keyed by the last order's date), and only within ``max_age`` of the lapse."""
    days = _days_since(conn, _attributes.c.last_order_at, now)
    lapse = trigger.factor * _attributes.c.mean_days_between
    query = (
        sa.select(_attributes.c.customer_id, _attributes.c.last_order_at, _attributes.c.mean_days_between)
        .select_from(_attributes.join(_customer, _customer.c.id == _attributes.c.customer_id))
        .where(
            _customer.c.merged_into.is_(None),
            _attributes.c.orders_lifetime >= trigger.min_orders,
            _attributes.c.mean_days_between > 0,
            _attributes.c.last_order_at.is_not(None),
            days > lapse,
            days <= lapse + trigger.max_age / _DAY,
            *_admitted(_attributes.c.customer_id, where),
        )
    )
    rows = []
    for customer_id, last, mean in conn.execute(query):
        since = (now - last) / _DAY
        facts = {
            "last_order_at": last.isoformat(),
            "mean_days_between": mean,
            "days_since_last_order": int(since),
            "overdue_factor": round(since / mean, 2),
        }
        lapsed_at = last + timedelta(days=trigger.factor * mean)
        suffix = f"lapse:{last.astimezone(zone).date().isoformat()}"
        rows.append(_candidate_row(trigger, customer_id, suffix, last.isoformat(), facts, lapsed_at, now))
    return rows, {"at": now.isoformat()}


def _points_expiring(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """``points_expiring`` events whose ``expires_on`` is within ``before`` from today (and not yet passed)."""
    today = now.astimezone(zone).date()
    expires = sa.func.substr(_event.c.payload_json["expires_on"].as_string(), 1, 10)
    owner = _owner()
    query = (
        sa.select(_event.c.id, owner, expires, _event.c.payload_json)
        .select_from(_event.join(_customer, _customer.c.id == _event.c.customer_id))
        .where(
            _event.c.type == "points_expiring",
            expires > today.isoformat(),
            expires <= (today + timedelta(days=trigger.before // _DAY)).isoformat(),
            *_admitted(owner, where),
        )
    )
    rows = []
    for event_id, customer_id, expires_on, payload in conn.execute(query):
        facts = {"event_id": event_id, "points": (payload or {}).get("points"), "expires_on": expires_on}
        rows.append(_candidate_row(trigger, customer_id, f"points:{event_id}", str(event_id), facts, now, now))
    return rows, {"date": today.isoformat()}


def _latest_tick(schedule: str, now: datetime, zone: ZoneInfo) -> datetime:
    """The last tick of the cron ``schedule`` (in ``zone``) at or before ``now``, in UTC."""
    ticks = croniter(schedule, now.astimezone(zone) + timedelta(seconds=1))
    tick: datetime = ticks.get_prev(datetime)
    while tick > now:
        tick = ticks.get_prev(datetime)
    return tick.astimezone(UTC)


def _campaign(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """When the schedule ticked since the last run (at most ``max_age`` ago), every member of the segment."""
    assert trigger.schedule is not None
    last = state.get("at")
    since = now - trigger.max_age
    if isinstance(last, str):
        since = max(since, datetime.fromisoformat(last))
    tick = _latest_tick(trigger.schedule, now, zone)
    rows: list[Row] = []
    if tick > since:
        query = (
            sa.select(_membership.c.customer_id)
            .select_from(_membership.join(_customer, _customer.c.id == _membership.c.customer_id))
            .where(
                _membership.c.segment == trigger.segment,
                _customer.c.merged_into.is_(None),
                *_admitted(_membership.c.customer_id, where),
            )
        )
        facts = {"segment": trigger.segment, "tick": tick.isoformat()}
        rows = [
            _candidate_row(trigger, customer_id, tick.isoformat(), tick.isoformat(), facts, tick, now)
            for (customer_id,) in conn.execute(query)
        ]
    return rows, {"at": now.isoformat()}


def _product_change(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, state: dict[str, Any], where: Any, zone: ZoneInfo
) -> tuple[list[Row], dict[str, Any]]:
    """``back_in_stock`` and ``price_drop``: product events past the watermark, for the customers who hold the
    product in a cart or wishlist (:mod:`hub.audience.product_triggers`); one candidate per customer and event."""
    after = int(state.get("event_id") or 0)
    rows = [
        _candidate_row(
            trigger,
            found.customer_id,
            f"product_event:{found.event_id}",
            str(found.event_id),
            found.facts,
            found.at,
            now,
        )
        for found in product_candidates(conn, trigger, now, after, where)
    ]
    return rows, {"event_id": _advance(conn, _product_event, _product_event.c.at, after, now)}


_FIRE = {
    "order_placed": _order_placed,
    "cart_abandoned": _cart_abandoned,
    "segment_entered": _segment_change("entered"),
    "segment_left": _segment_change("left"),
    "birthday": _birthday,
    "first_order_anniversary": _first_order_anniversary,
    "win_back": _win_back,
    "points_expiring": _points_expiring,
    "campaign": _campaign,
    "back_in_stock": _product_change,
    "price_drop": _product_change,
}


# -- preparing --------------------------------------------------------------------------------------------------------


def accessory_purchases(
    conn: sa.Connection, customer_ids: Sequence[int], since: datetime, until: datetime
) -> dict[int, list[tuple[datetime, str]]]:
    """customer id -> (time, group) of every accessory they bought in [since, until]: one query.

    An accessory of a group is a product of that group with ``is_accessory``, or a product related as
    ``accessory`` to a main product of the group. Purchases of customers merged into them count as theirs.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    owner = _owner()
    bought = _line.join(_order, _order.c.id == _line.c.order_id).join(_customer, _customer.c.id == _order.c.customer_id)
    common = (
        sa.or_(one_of(conn, _customer.c.id, ids), one_of(conn, _customer.c.merged_into, ids)),
        sa.not_(_order.c.is_return),
        _order.c.placed_at >= since,
        _order.c.placed_at <= until,
    )
    direct = (
        sa.select(owner.label("customer_id"), _order.c.placed_at, _product.c.product_group)
        .select_from(bought.join(_product, _product.c.sku == _line.c.sku))
        .where(_product.c.is_accessory, _product.c.product_group.is_not(None), *common)
    )
    main = _product.alias("main")
    related = (
        sa.select(owner, _order.c.placed_at, main.c.product_group)
        .select_from(
            bought.join(
                _relation, sa.and_(_relation.c.related_sku == _line.c.sku, _relation.c.kind == "accessory")
            ).join(main, main.c.sku == _relation.c.sku)
        )
        .where(sa.not_(main.c.is_accessory), main.c.product_group.is_not(None), *common)
    )
    found: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for customer_id, at, group in conn.execute(sa.union_all(direct, related)):
        found[customer_id].append((at, group))
    return found


def _has_accessory(
    purchases: Sequence[tuple[datetime, str]], groups: Sequence[str], at: datetime, window: timedelta, now: datetime
) -> bool:
    """An accessory of one of ``groups`` bought within ``window`` of ``at`` (the same order included), up to now."""
    wanted = set(groups)
    return any(group in wanted and abs(when - at) <= window and when <= now for when, group in purchases)


def _mapping(candidate: Any) -> Mapping[str, Any]:
    return candidate if isinstance(candidate, Mapping) else candidate._mapping


def prepare_due(
    conn: sa.Connection,
    config: HubConfig,
    candidates: Sequence[Any],
    now: datetime,
    *,
    plugin_attributes: Mapping[str, AttributeSpec] | None = None,
    recommenders: Mapping[str, Recommender] | None = None,
) -> list[Prepared]:
    """Branch, variant, payload and destination views for each candidate (rows or mappings of
    ``audience_candidate``), in their order. One query per table for the whole batch.

    ``recommenders``: the recommender connectors the triggers' ``recommendations`` name, by name; a candidate
    whose trigger asks for recommendations gets them from there, bounded in time, or from the built-in.

    A candidate that cannot be sent as it was fired gets ``Prepared.error`` (contact pressure suppresses it with
    that reason): its trigger was removed, its customer or order is gone, its cart was bought or changed since,
    the customer left the segment it entered (or is back in the one it left) before a delayed message was due,
    or no branch applies.
    """
    from hub.audience.attributes import read_attributes

    _aware(now)
    rows = [_mapping(candidate) for candidate in candidates]
    if not rows:
        return []
    positions = {name: index for index, name in enumerate(config.triggers)}
    prepared = [
        Prepared(
            candidate_id=row["id"],
            key=row["key"],
            trigger=row["trigger"],
            message_type=row["message_type"],
            customer_id=row["customer_id"],
            fired_at=row["fired_at"],
            due_at=row["due_at"],
            status=row["status"],
            order=positions.get(row["trigger"], len(positions)),
        )
        for row in rows
    ]
    facts = [dict(row["facts"] or {}) for row in rows]
    customer_ids = sorted({p.customer_id for p in prepared})
    live = survivors(conn, customer_ids)
    present = [c for c in customer_ids if live.get(c) == c]
    views = customer_views(conn, present)
    attributes = read_attributes(conn, present, now, plugin_attributes=plugin_attributes or {})

    triggers = [config.triggers.get(p.trigger) for p in prepared]
    kinds = [trigger.on if trigger is not None else None for trigger in triggers]
    orders = load_orders(conn, [int(f["order_id"]) for f, on in zip(facts, kinds, strict=True) if on == "order_placed"])
    carts = load_carts(conn, [int(f["cart_id"]) for f, on in zip(facts, kinds, strict=True) if on == "cart_abandoned"])
    bought_since = _orders_after_carts(conn, carts.values())
    members = _memberships(
        conn,
        [(str(f["segment"]), p.customer_id) for p, f, on in zip(prepared, facts, kinds, strict=True) if on in _SEGMENT],
    )
    held = product_contexts(
        conn,
        {
            index: (on, prepared[index].customer_id, fact)
            for index, (fact, on) in enumerate(zip(facts, kinds, strict=True))
            if on in PRODUCT_TRIGGERS
        },
    )

    anchors: dict[int, tuple[datetime, list[str]]] = {}
    for index, (fact, on) in enumerate(zip(facts, kinds, strict=True)):
        if on == "order_placed" and int(fact["order_id"]) in orders:
            anchors[index] = (orders[int(fact["order_id"])]["placed_at"], list(fact.get("product_groups") or []))
        elif on == "cart_abandoned" and int(fact["cart_id"]) in carts:
            anchors[index] = (carts[int(fact["cart_id"])]["updated_at"], list(fact.get("product_groups") or []))
        elif index in held and (anchor := held[index].anchor) is not None:
            anchors[index] = (anchor, list(fact.get("product_groups") or []))
    window = config.attributes.accessory_window
    purchases: dict[int, list[tuple[datetime, str]]] = {}
    if anchors:
        earliest = min(at for at, _ in anchors.values())
        purchases = accessory_purchases(
            conn, sorted({prepared[i].customer_id for i in anchors}), earliest - window, now
        )

    variants: dict[str, dict[int, str]] = {}
    for name in {p.trigger for p in prepared}:
        trigger = config.triggers.get(name)
        if trigger is not None and trigger.variants:
            ids = [p.customer_id for p in prepared if p.trigger == name and p.customer_id in views]
            variants[name] = assign_variants(conn, name, ids, trigger.variants, now)

    errors: dict[int, str] = {}
    blocks: dict[int, dict[str, Any]] = {}
    wants: dict[int, tuple[int, list[str], list[str]]] = {}
    for index, (p, trigger, fact) in enumerate(zip(prepared, triggers, facts, strict=True)):
        error = _source_error(p, trigger, fact, live, views, orders, carts, bought_since, members)
        if error is None and index in held:
            error = held[index].error
        if error is not None:
            errors[index] = error
            continue
        assert trigger is not None
        block: dict[str, Any] = {}
        if trigger.on == "order_placed":
            block["order"] = orders[int(fact["order_id"])]
            block["main"] = block["order"]["lines"]
        elif trigger.on == "cart_abandoned":
            block["cart"] = carts[int(fact["cart_id"])]
            block["main"] = block["cart"]["items"]
        elif index in held:
            block.update(_product_blocks(held[index]))
        blocks[index] = block
        if "main" in block and trigger.accessories > 0:
            groups = set(fact.get("product_groups") or [])
            mains = [
                line["sku"]
                for line in block["main"]
                if line["sku"] and not line["is_accessory"] and (not groups or line["product_group"] in groups)
            ]
            in_cart = [item["sku"] for item in block["cart"]["items"] if item["sku"]] if "cart" in block else []
            wants[index] = (p.customer_id, mains, in_cart)
    limit = max((triggers[i].accessories for i in wants), default=0)  # type: ignore[union-attr]
    accessories = recommend_accessories(conn, wants, limit)
    recommendations = _recommendations(conn, config, prepared, triggers, blocks, views, now, recommenders or {})

    for index, (p, trigger, fact) in enumerate(zip(prepared, triggers, facts, strict=True)):
        if index in errors:
            p.error = errors[index]
            continue
        assert trigger is not None
        p.variant = variants.get(p.trigger, {}).get(p.customer_id)
        values = dict(attributes.get(p.customer_id, {}))
        anchor = anchors.get(index)
        values.update(
            has_accessory_for_group=anchor is not None
            and _has_accessory(purchases.get(p.customer_id, ()), anchor[1], anchor[0], window, now),
            product_groups=list(fact.get("product_groups") or []),
            order_total=fact.get("order_total", fact.get("cart_total")),
            channel=fact.get("channel"),
            variant=p.variant,
        )
        try:
            branch = _branch(trigger, values)
        except Exception as exc:  # a branch that cannot be evaluated must not stop the batch
            p.error = f"branch of trigger {trigger.name} could not be evaluated: {exc}"
            continue
        if branch is False:
            p.error = f"no branch of trigger {trigger.name} applies"
            continue
        p.branch = branch.name if branch is not None else None
        targets = branch.to if branch is not None and branch.to else trigger.to
        block = blocks[index]
        p.payload = build_payload(
            trigger=trigger.name,
            message_type=trigger.message_type,
            on=trigger.on,
            fired_at=p.fired_at,
            branch=p.branch,
            variant=p.variant,
            customer=customer_block(views[p.customer_id], attributes.get(p.customer_id)),
            facts=fact,
            order=block.get("order"),
            cart=block.get("cart"),
            accessories=accessories[index][: trigger.accessories] if index in accessories else None,
            recommendations=recommendations.get(index),
            product=block.get("product"),
            wishlist=block.get("wishlist"),
        )
        keys = hub_keys(views[p.customer_id])
        p.views = {
            destination: {"trigger_id": target.trigger_id, "data": p.payload, "_hub": keys}
            for destination, target in targets.items()
        }
    return prepared


def _product_blocks(context: ProductContext) -> dict[str, Any]:
    """The payload blocks of a stock or price candidate: the product, and the cart and/or wishlist holding it."""
    block: dict[str, Any] = {"product": context.product, "main": context.main}
    if context.cart is not None:
        block["cart"] = context.cart
    if context.wishlist is not None:
        block["wishlist"] = context.wishlist
    return block


def recommendation_settings(config: HubConfig, trigger: TriggerConfig) -> RecommendationsConfig | None:
    """The trigger's ``recommendations``, else ``recommend.triggers``; None: its payload has no such block."""
    from hub.recommend.builtin import settings_of

    return trigger.recommendations if trigger.recommendations is not None else settings_of(config).triggers


def _recommendations(
    conn: sa.Connection,
    config: HubConfig,
    prepared: Sequence[Prepared],
    triggers: Sequence[TriggerConfig | None],
    blocks: Mapping[int, Mapping[str, Any]],
    views: Mapping[int, Any],
    now: datetime,
    recommenders: Mapping[str, Recommender],
) -> dict[int, dict[str, Any]]:
    """index -> the ``recommendations`` block of each candidate whose trigger asks for one: the order's or
    cart's products are what the suggestions follow (a date or segment trigger asks for the customer alone)."""
    from hub.recommend.blocks import Want, recommendation_blocks
    from hub.recommend.builtin import settings_of

    wants: dict[int, Want] = {}
    for index, block in blocks.items():
        trigger = triggers[index]
        settings = recommendation_settings(config, trigger) if trigger is not None else None
        if settings is None or settings.limit <= 0:
            continue
        lines = [line["sku"] for line in block.get("main", ()) if line["sku"]]
        customer_id = prepared[index].customer_id
        wants[index] = Want(
            settings=settings,
            customer_id=customer_id,
            products=lines,
            exclude=lines,
            keys=hub_keys(views[customer_id]),
        )
    return recommendation_blocks(conn, wants, now, settings_of(config), recommenders)


def _source_error(
    p: Prepared,
    trigger: TriggerConfig | None,
    fact: Mapping[str, Any],
    live: Mapping[int, int],
    views: Mapping[int, Any],
    orders: Mapping[int, Any],
    carts: Mapping[int, Any],
    bought_since: set[int],
    members: set[tuple[str, int]],
) -> str | None:
    """Why the candidate can no longer be sent as fired, or None."""
    if trigger is None:
        return f"trigger {p.trigger} is no longer in hub.yaml"
    if p.customer_id not in live or p.customer_id not in views:
        return f"customer {p.customer_id} no longer exists"
    if live[p.customer_id] != p.customer_id:
        return f"customer {p.customer_id} was merged into customer {live[p.customer_id]}"
    if trigger.on == "order_placed" and int(fact["order_id"]) not in orders:
        return f"order {fact['order_id']} no longer exists"
    if trigger.on == "cart_abandoned":
        cart = carts.get(int(fact["cart_id"]))
        if cart is None:
            return f"cart {fact['cart_id']} no longer exists"
        if cart["updated_at"].isoformat() != fact.get("updated_at"):
            return f"cart {fact['cart_id']} changed after it was abandoned"
        if (cart["status"] or "").lower() in CLOSED_CART_STATUSES or cart["id"] in bought_since:
            return f"the customer ordered after abandoning cart {fact['cart_id']}"
    if trigger.on in _SEGMENT:
        member = (str(fact["segment"]), p.customer_id) in members
        if trigger.on == "segment_entered" and not member:
            return f"customer {p.customer_id} left segment {fact['segment']} before the message was due"
        if trigger.on == "segment_left" and member:
            return f"customer {p.customer_id} is back in segment {fact['segment']}"
    return None


_SEGMENT = ("segment_entered", "segment_left")


def _memberships(conn: sa.Connection, pairs: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of the (segment, customer) pairs are members now: one query per segment."""
    found: set[tuple[str, int]] = set()
    by_segment: dict[str, set[int]] = {}
    for segment, customer_id in pairs:
        by_segment.setdefault(segment, set()).add(customer_id)
    for segment, customers in by_segment.items():
        query = sa.select(_membership.c.customer_id).where(
            _membership.c.segment == segment, one_of(conn, _membership.c.customer_id, sorted(customers))
        )
        found.update((segment, int(customer_id)) for customer_id in conn.execute(query).scalars())
    return found


def _orders_after_carts(conn: sa.Connection, carts: Iterable[Mapping[str, Any]]) -> set[int]:
    """Ids of the carts whose customer (or its survivor) placed an order after the cart's last change: one query."""
    carts = [cart for cart in carts if cart["customer_id"] is not None]
    if not carts:
        return set()
    owners = survivors(conn, [cart["customer_id"] for cart in carts])
    ids = sorted(set(owners) | set(owners.values()))
    owner = _owner()
    query = (
        sa.select(owner, sa.func.max(_order.c.placed_at))
        .select_from(_order.join(_customer, _customer.c.id == _order.c.customer_id))
        .where(sa.or_(one_of(conn, _customer.c.id, ids), one_of(conn, _customer.c.merged_into, ids)))
        .where(sa.not_(_order.c.is_return))
        .group_by(owner)
    )
    latest = {customer_id: at for customer_id, at in conn.execute(query)}
    return {
        cart["id"]
        for cart in carts
        if (at := latest.get(owners.get(cart["customer_id"], cart["customer_id"]))) is not None
        and at > cart["updated_at"]
    }


@lru_cache(maxsize=256)
def _branch_expression(text: str) -> Any:
    from hub.audience.expressions import parse

    return parse(text, context="branch")


def _branch(trigger: TriggerConfig, values: Mapping[str, Any]) -> Any:
    """The first branch whose ``when`` holds (None when the trigger has no branches, False when none holds)."""
    if not trigger.branches:
        return None
    for branch in trigger.branches:
        if branch.when is None or _branch_expression(branch.when).evaluate(values):
            return branch
    return False
