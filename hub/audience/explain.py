"""``hub explain``: why a customer did or did not get a message, in plain words.

An :class:`Explanation` gathers the customer's key attributes, the segments they are in (and since when), and each
candidate message with every decision ``contact_log`` holds about it, worded from the rule that decided
("held until 2025-01-01 10:00 by cap 'one post-purchase per two days': already got post_purchase at ...").
Asked about a message type no trigger ever fired for the customer, it lists the triggers of that type and what
would have to hold for them to fire, and what contact pressure would say if one fired now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from rich.markup import escape

from hub.audience.attributes import read_attributes
from hub.audience.policy import judge, read_facts, span
from hub.audience.types import AttributeSpec
from hub.config import HubConfig
from hub.config._audience import TriggerConfig
from hub.delivery.views import jsonable, survivors
from hub.models import AudienceCandidate, ContactLog, Customer, Identity, SegmentMembership

__all__ = ["KEY_ATTRIBUTES", "CandidateStory", "DecisionLine", "Explanation", "describe", "explain", "resolve_customer"]

#: The attributes ``render`` shows (every attribute is in ``to_dict``).
KEY_ATTRIBUTES: tuple[str, ...] = (
    "tier",
    "rfm_segment",
    "orders_lifetime",
    "monetary_lifetime",
    "last_order_at",
    "days_since_last_order",
    "clv_predicted",
    "p_alive",
    "favourite_store",
    "favourite_channel",
    "product_groups",
    "is_b2b",
)
_IDENTITY_KINDS = ("email", "phone", "member_no")

_candidate: sa.Table = AudienceCandidate.__table__  # type: ignore[attr-defined]
_log: sa.Table = ContactLog.__table__  # type: ignore[attr-defined]
_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_identity: sa.Table = Identity.__table__  # type: ignore[attr-defined]
_member: sa.Table = SegmentMembership.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class DecisionLine:
    """One ``contact_log`` row, and its plain-words ``text``."""

    at: datetime
    decision: str
    rule: str
    reason: str
    hold_until: datetime | None
    destinations: list[str]
    text: str


@dataclass(slots=True)
class CandidateStory:
    """A candidate message and every decision about it, oldest first."""

    id: int
    key: str
    trigger: str
    message_type: str
    fired_at: datetime
    due_at: datetime
    status: str
    branch: str | None
    variant: str | None
    decisions: list[DecisionLine] = field(default_factory=list)


@dataclass(slots=True)
class Explanation:
    """Everything ``hub explain`` says about one customer (``message_type``: the question was about that type)."""

    customer_id: int
    now: datetime
    timezone: str
    customer: dict[str, Any]
    attributes: dict[str, Any]
    segments: list[tuple[str, datetime]]
    message_type: str | None = None
    candidates: list[CandidateStory] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["segments"] = [{"segment": name, "since": since} for name, since in self.segments]
        return dict(jsonable(data))

    def render(self) -> str:
        """Plain words, with a little rich markup for headings (user data is escaped)."""
        zone = ZoneInfo(self.timezone)
        customer = self.customer
        name = " ".join(part for part in (customer.get("first_name"), customer.get("last_name")) if part)
        head = f"customer {self.customer_id}" + (f": {name}" if name else "")
        if customer.get("email"):
            head += f" <{customer['email']}>"
        if customer.get("member_no"):
            head += f", member {customer['member_no']}"
        flags = [word for word, on in (("B2B", customer.get("is_b2b")), ("erased", customer.get("erased_at"))) if on]
        lines = [f"[bold]{escape(head)}[/bold]" + (f" ({', '.join(flags)})" if flags else "")]
        shown = [(key, self.attributes.get(key)) for key in KEY_ATTRIBUTES]
        shown = [(key, value) for key, value in shown if value not in (None, [], "") and value is not False]
        lines.append(
            "attributes: " + (", ".join(f"{key} {escape(_value(value, zone))}" for key, value in shown) or "none yet")
        )
        if self.segments:
            lines.append(
                "segments: " + ", ".join(f"{escape(s)} (since {_at(since, zone)})" for s, since in self.segments)
            )
        else:
            lines.append("segments: none")
        about = f" ({self.message_type})" if self.message_type else ""
        lines.append(f"[bold]messages{escape(about)}[/bold]" + ("" if self.candidates else ": none"))
        for story in self.candidates:
            branch = f", branch {story.branch}" if story.branch else ""
            variant = f", variant {story.variant}" if story.variant else ""
            lines.append(
                escape(
                    f"  {story.message_type} from trigger {story.trigger}, fired {_at(story.fired_at, zone)}"
                    f"{branch}{variant}: {story.status}"
                )
            )
            if not story.decisions:
                lines.append(f"    not decided yet (due {_at(story.due_at, zone)})")
            for line in story.decisions:
                lines.append(escape(f"    {_at(line.at, zone)}: {line.text}"))
        lines.extend(escape(note) for note in self.notes)
        return "\n".join(lines)


def _at(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _value(value: Any, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return _at(value, zone)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return str(value)


def describe(
    decision: str,
    rule: str,
    reason: str,
    *,
    message_type: str,
    trigger: str | None,
    at: datetime,
    hold_until: datetime | None,
    destinations: Sequence[str],
    zone: ZoneInfo,
) -> str:
    """One decision in plain words, from its rule: sent, held or suppressed, by what and why."""
    if decision == "send":
        source = f" (trigger {trigger})" if trigger else ""
        to = f" to {', '.join(destinations)}" if destinations else ""
        kind = " (transactional: only erasure stops it)" if rule == "transactional" else ""
        return f"sent {message_type}{source} on {_at(at, zone)}{to}{kind}"
    held = f"held until {_at(hold_until, zone)}" if decision == "hold" and hold_until else "suppressed"
    if rule.startswith("cap:"):
        return f"{held} by {reason}"
    if rule.startswith("quarantine:"):
        return f"quarantined ({held}): {reason}"
    return f"{held}: {reason}"


def explain(
    conn: sa.Connection,
    config: HubConfig,
    customer_id: int,
    now: datetime,
    *,
    message_type: str | None = None,
    plugin_attributes: Mapping[str, AttributeSpec] | None = None,
) -> Explanation:
    """Explain ``customer_id`` at ``now``: attributes, segments and the decisions about each candidate message
    (of ``message_type`` only, when given)."""
    zone = ZoneInfo(config.timezone)
    columns = ("first_name", "last_name", "email", "member_no", "phone", "is_b2b", "erased_at", "merged_into")
    row = conn.execute(
        sa.select(*(_customer.c[name] for name in columns)).where(_customer.c.id == customer_id)
    ).one_or_none()
    customer = dict(zip(columns, row, strict=True)) if row is not None else {}
    attributes = read_attributes(conn, [customer_id], now, plugin_attributes=plugin_attributes or {}).get(
        customer_id, {}
    )
    segments = conn.execute(
        sa.select(_member.c.segment, _member.c.since)
        .where(_member.c.customer_id == customer_id)
        .order_by(_member.c.segment)
    ).all()
    explanation = Explanation(
        customer_id=customer_id,
        now=now,
        timezone=config.timezone,
        customer=customer,
        attributes=dict(attributes),
        segments=[(name, since) for name, since in segments],
        message_type=message_type,
    )
    explanation.candidates = _stories(conn, customer_id, message_type, zone)
    if message_type is not None and not explanation.candidates:
        explanation.notes = _nothing_fired(conn, config, customer_id, message_type, now, zone)
    return explanation


def _stories(conn: sa.Connection, customer_id: int, message_type: str | None, zone: ZoneInfo) -> list[CandidateStory]:
    c = _candidate
    query = sa.select(c).where(c.c.customer_id == customer_id).order_by(c.c.fired_at, c.c.id)
    if message_type is not None:
        query = query.where(c.c.message_type == message_type)
    stories = {
        row.id: CandidateStory(
            row.id,
            row.key,
            row.trigger,
            row.message_type,
            row.fired_at,
            row.due_at,
            row.status,
            row.branch,
            row.variant,
        )
        for row in conn.execute(query)
    }
    if not stories:
        return []
    logs = (
        sa.select(_log)
        .where(_log.c.customer_id == customer_id, _log.c.candidate_id.in_(list(stories)))
        .order_by(_log.c.at, _log.c.id)
    )
    for row in conn.execute(logs):
        text = describe(
            row.decision,
            row.rule,
            row.reason,
            message_type=row.message_type,
            trigger=row.trigger,
            at=row.at,
            hold_until=row.hold_until,
            destinations=row.destinations or [],
            zone=zone,
        )
        stories[row.candidate_id].decisions.append(
            DecisionLine(row.at, row.decision, row.rule, row.reason, row.hold_until, list(row.destinations or []), text)
        )
    return list(stories.values())


def _nothing_fired(
    conn: sa.Connection, config: HubConfig, customer_id: int, message_type: str, now: datetime, zone: ZoneInfo
) -> list[str]:
    """Why there is no candidate of ``message_type``: which triggers could fire one and what they need, and
    what contact pressure would decide if one fired now."""
    triggers = {name: t for name, t in config.triggers.items() if t.message_type == message_type}
    notes = [f"No trigger of type {message_type} has fired for this customer."]
    if not triggers:
        notes.append(f"No trigger in hub.yaml makes {message_type} messages.")
    for name, trigger in triggers.items():
        notes.append(f"trigger {name} would fire {_needs(trigger)}.")
    pressure = config.contact_pressure
    facts = read_facts(conn, pressure, [customer_id], now)[customer_id]
    decided = judge(pressure, message_type, facts, now, due_at=now, zone=zone)
    if decided.decision == "send":
        notes.append("If one fired now, contact pressure would send it.")
    else:
        text = describe(
            decided.decision,
            decided.rule,
            decided.reason,
            message_type=message_type,
            trigger=None,
            at=now,
            hold_until=decided.hold_until,
            destinations=[],
            zone=zone,
        )
        notes.append(f"If one fired now, it would be {text}.")
    return notes


def _needs(trigger: TriggerConfig) -> str:
    """What must happen for a trigger to fire, from its ``on``, ``filter``, ``segment`` and ``where``."""
    on = trigger.on
    what = {
        "order_placed": "when the customer places an order",
        "cart_abandoned": f"when a cart is left without an order for {span(trigger.after)}",
        "segment_entered": f"when the customer enters segment {trigger.segment}",
        "segment_left": f"when the customer leaves segment {trigger.segment}",
        "birthday": "on the customer's birthday",
        "first_order_anniversary": "on the anniversary of the customer's first order",
        "win_back": (
            f"when a customer with at least {trigger.min_orders} orders is overdue by {trigger.factor:g} times "
            "their mean days between orders"
        ),
        "points_expiring": f"{span(trigger.before)} before loyalty points expire",
        "campaign": f"on schedule {trigger.schedule} for members of segment {trigger.segment}",
        "back_in_stock": f"when a product in their {' or '.join(trigger.from_)} is back in stock",
        "price_drop": (
            f"when a product in their {' or '.join(trigger.from_)} drops in price by at least "
            f"{trigger.min_drop.value:g}{'%' if trigger.min_drop.percent else ''}"
        ),
    }[on]
    filters = trigger.filter
    parts = [
        f"{label} in {', '.join(values)}"
        for label, values in (
            ("product group", filters.product_groups),
            ("brand", filters.brands),
            ("campaign", filters.campaigns),
            ("channel", filters.channels),
        )
        if values
    ]
    if filters.min_total is not None:
        parts.append(f"total at least {filters.min_total:g}")
    if parts:
        what += " with " + " and ".join(parts)
    if trigger.where:
        what += f", if {trigger.where}"
    return f"{what} (on: {on})"


def resolve_customer(conn: sa.Connection, text: str) -> int | None:
    """The live customer ``text`` names: an id, an e-mail (any case), a member number or a phone; a customer
    merged away resolves to the one it was merged into. None when nothing matches."""
    text = text.strip()
    if not text:
        return None
    c = _customer.c
    found: int | None = None
    if text.isdigit() and len(text) < 19:
        found = conn.execute(sa.select(c.id).where(c.id == int(text))).scalar()
    compact = "".join(ch for ch in text if ch not in " -()")
    if found is None:
        query = (
            sa.select(c.id)
            .where(sa.or_(sa.func.lower(c.email) == text.lower(), c.member_no == text, c.phone.in_([text, compact])))
            .order_by(c.merged_into.is_not(None), c.id)
            .limit(1)
        )
        found = conn.execute(query).scalar()
    if found is None:
        i = _identity.c
        query = (
            sa.select(i.customer_id)
            .where(
                i.kind.in_(_IDENTITY_KINDS),
                sa.or_(i.value == text, i.value == compact, sa.func.lower(i.value) == text.lower()),
            )
            .order_by(i.id)
            .limit(1)
        )
        found = conn.execute(query).scalar()
    if found is None:
        return None
    return survivors(conn, [found]).get(found, found)
