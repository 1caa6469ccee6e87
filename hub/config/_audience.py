"""The audience blocks of hub.yaml: ``attributes``, ``segments``, ``triggers`` and ``contact_pressure``.

Expressions (a segment's ``when``, a trigger's ``where``, a branch's ``when``) are parsed here against the
whitelist of :mod:`hub.audience.expressions`, so a typo is reported with the file, the line, the key and the
column in the expression. Names that point elsewhere in the file (a message type, a segment, a destination)
are checked against what the loader collected from the file (:class:`LoadContext`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from hub.config._models import _BLOCK, _check_cron, _context, _Duration, _known_connector, _set_by_loader

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TRIGGER_EVENTS = (
    "order_placed",
    "cart_abandoned",
    "segment_entered",
    "segment_left",
    "birthday",
    "first_order_anniversary",
    "win_back",
    "points_expiring",
    "campaign",
    "back_in_stock",
    "price_drop",
)
TriggerEvent = Literal[
    "order_placed",
    "cart_abandoned",
    "segment_entered",
    "segment_left",
    "birthday",
    "first_order_anniversary",
    "win_back",
    "points_expiring",
    "campaign",
    "back_in_stock",
    "price_drop",
]
#: The triggers that fire on a product's stock or price change, for the customers who hold it.
PRODUCT_TRIGGERS = ("back_in_stock", "price_drop")
Priority = Literal["transactional", "triggered", "campaign"]
#: Highest first: a lower-priority message yields its slot to a higher one.
PRIORITIES: tuple[Priority, ...] = ("transactional", "triggered", "campaign")
ExpressionContext = Literal["segment", "branch"]


def _check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError("names are lower-case letters, digits and _, starting with a letter")
    return name


def _expression(kind: ExpressionContext) -> Any:
    """A validator that parses an expression against the whitelist; the error names the column."""

    def check(text: str, info: ValidationInfo) -> str:
        from hub.audience.expressions import ExpressionError, parse

        context = _context(info)
        names = None if context is None or context.attribute_names is None else context.attribute_names
        segments = None if context is None else context.segment_names
        try:
            parse(text, context=kind, attributes=names, segments=segments)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return text

    return AfterValidator(check)


def _known_message_type(name: str, info: ValidationInfo) -> str:
    context = _context(info)
    if context is not None and context.message_types is not None and name not in context.message_types:
        known = ", ".join(sorted(context.message_types)) or "none"
        raise ValueError(f"unknown message type {name!r} (contact_pressure.message_types has: {known})")
    return name


def _known_segment(name: str, info: ValidationInfo) -> str:
    context = _context(info)
    if context is not None and name not in context.segment_names:
        known = ", ".join(sorted(context.segment_names)) or "none"
        raise ValueError(f"unknown segment {name!r} (segments: {known})")
    return name


SegmentExpression = Annotated[str, _expression("segment")]
BranchExpression = Annotated[str, _expression("branch")]
MessageTypeName = Annotated[str, AfterValidator(_known_message_type)]
SegmentName = Annotated[str, AfterValidator(_known_segment)]
DestinationName = Annotated[str, AfterValidator(_known_connector)]
_LoaderName = Annotated[SkipJsonSchema[str], BeforeValidator(_set_by_loader)]
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s)?$")
_DROP = re.compile(r"^(\d+(?:\.\d+)?)\s*(%)?$")
#: ``from:`` value that asks no connector: the built-in recommender answers.
BUILTIN = "builtin"


# --- attributes ------------------------------------------------------------------------------------------------------


class TierConfig(BaseModel):
    """A/B/C value tiers by share of value: with the default, A are the customers who make the top 50 % of the
    value over the attributes window, B the next 30 %, C the rest (and customers with no value)."""

    model_config = _BLOCK

    by: Literal["monetary_window", "monetary_lifetime", "clv_predicted", "clv_historical"] = "monetary_window"
    shares: dict[str, float] = Field(default_factory=lambda: {"A": 0.5, "B": 0.3, "C": 0.2})

    @field_validator("shares")
    @classmethod
    def _shares(cls, shares: dict[str, float]) -> dict[str, float]:
        if not shares:
            raise ValueError("give at least one tier, e.g. {A: 0.5, B: 0.3, C: 0.2}")
        if any(share <= 0 for share in shares.values()):
            raise ValueError("every share must be above 0")
        if abs(sum(shares.values()) - 1.0) > 1e-6:
            raise ValueError(f"shares must add up to 1 (they add up to {sum(shares.values()):g})")
        return shares


class ClvConfig(BaseModel):
    """Predictive CLV: BG/NBD (expected purchases) and Gamma-Gamma (expected spend per purchase), fitted on the data."""

    model_config = _BLOCK

    horizon: _Duration = timedelta(days=365)
    min_customers: PositiveInt = Field(default=200, description="fewer repeat buyers than this: no fit, no prediction")


class AttributesConfig(BaseModel):
    """How the computed attributes are computed (``hub compute``)."""

    model_config = _BLOCK

    window: _Duration = Field(
        default=timedelta(days=365), description="the window of orders_window and monetary_window (and tiers)"
    )
    accessory_window: _Duration = Field(
        default=timedelta(days=30),
        description="an accessory bought this close to a main product of its group counts as bought with it",
    )
    tiers: TierConfig = TierConfig()
    clv: ClvConfig = ClvConfig()


# --- segments --------------------------------------------------------------------------------------------------------


class SegmentConfig(BaseModel):
    """A named set of customers, re-evaluated after each compute: ``when`` is an expression over attributes."""

    model_config = _BLOCK

    name: _LoaderName = ""
    description: str = ""
    when: SegmentExpression
    push: list[DestinationName] = Field(default=[], description="destinations that receive entered/left")
    message_type: MessageTypeName | None = Field(
        default=None,
        description="the pushed membership obeys this message type's exclusions and quarantines",
    )


# --- triggers --------------------------------------------------------------------------------------------------------


class TriggerTarget(BaseModel):
    """What one destination needs to start the message: e.g. Voyado's custom trigger id."""

    model_config = _BLOCK

    trigger_id: str


class TriggerFilter(BaseModel):
    """Which orders (or carts) fire the trigger; an empty list does not filter."""

    model_config = _BLOCK

    product_groups: list[str] = []
    brands: list[str] = []
    campaigns: list[str] = []
    channels: list[str] = []
    min_total: float | None = None


class Branch(BaseModel):
    """One way a trigger's message can go; the first branch whose ``when`` holds is taken (no ``when``: always)."""

    model_config = _BLOCK

    name: Annotated[str, AfterValidator(_check_name)]
    when: BranchExpression | None = None
    to: dict[DestinationName, TriggerTarget] = {}


class MinDrop(BaseModel):
    """The least price drop that fires ``price_drop``: a share of the old price (``10%``) or an amount (``100``)."""

    model_config = _BLOCK

    value: float = Field(ge=0)
    percent: bool = False

    def reached(self, old: Decimal, new: Decimal) -> bool:
        """True when the drop from ``old`` to ``new`` is a drop and at least this large (exactly, in decimals)."""
        drop = old - new
        if drop <= 0:
            return False
        wanted = Decimal(str(self.value))
        return drop * 100 >= old * wanted if self.percent else drop >= wanted


def _parse_drop(value: Any) -> Any:
    """``10%`` (of the old price), ``100`` or ``"99.5"`` (an amount in the product's currency)."""
    if isinstance(value, MinDrop | dict):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"value": value}
    found = _DROP.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise ValueError("use a share of the old price or an amount: 10%, 100")
    return {"value": float(found.group(1)), "percent": found.group(2) == "%"}


_MinDrop = Annotated[
    MinDrop,
    BeforeValidator(_parse_drop),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DROP.pattern}]}),
]


def _parse_seconds(value: Any) -> Any:
    """``800ms``, ``1.5s``, ``2`` (seconds): a recommender's timeout is under a second, below ``_Duration``'s unit."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    if isinstance(value, int | float):
        return float(value)
    found = _SECONDS.match(value.strip().lower())
    if found is None:
        raise ValueError("use seconds or milliseconds: 800ms, 1.5s, 2")
    number = float(found.group(1))
    return number / 1000 if found.group(2) == "ms" else number


_Seconds = Annotated[
    float,
    BeforeValidator(_parse_seconds),
    Field(gt=0),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": _SECONDS.pattern}]}),
]


def _recommender(name: str, info: ValidationInfo) -> str:
    """``builtin``, or a configured connector whose type plays the ``recommender`` role.

    The role is checked when the loader tells which type each connector has (``LoadContext.connector_plugins``);
    otherwise the name alone is checked here and the type when the hub builds the connector.
    """
    if name == BUILTIN:
        return name
    context = _context(info)
    if context is None:
        return name
    if name not in context.connector_names:
        configured = ", ".join(sorted(context.connector_names)) or "none"
        raise ValueError(f"unknown connector {name!r} (configured: {configured}; or {BUILTIN!r})")
    connector_type = context.connector_types.get(context.connector_plugins.get(name, ""))
    if connector_type is not None and "recommender" not in connector_type.roles:
        raise ValueError(f"connector {name!r} (type {connector_type.type!r}) is not a recommender")
    return name


class RecommendationsConfig(BaseModel):
    """Where a trigger payload's ``recommendations`` block comes from.

    ``from`` names a recommender connector (e.g. Raptor) or ``builtin``. Each candidate's call is bounded by
    ``timeout``; at most ``concurrency`` calls run at once, and a call that fails, times out or answers nothing
    is answered by the built-in recommender instead. The block says which one answered.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Annotated[str, AfterValidator(_recommender)] = Field(default=BUILTIN, alias="from")
    limit: int = Field(default=3, ge=0, description="products in the block; 0: no recommendations block")
    timeout: _Seconds = Field(default=0.8, description="per call, e.g. 800ms: past it, the built-in answers")
    concurrency: PositiveInt = Field(default=8, description="calls to the connector in flight at once")


class FollowupConfig(BaseModel):
    """The follow-up analysis of ``hub compute``: what buyers of a product (or group) bought next."""

    model_config = _BLOCK

    window: _Duration = Field(default=timedelta(days=90), description="bought next: in a later order within this")
    min_support: PositiveInt = Field(default=3, description="customers who must have made the pair to keep it")
    min_confidence: float = Field(default=0.02, ge=0, le=1, description="share of the buyers who made the pair")
    min_lift: float = Field(default=1.5, gt=0, description="keep pairs at least this many times likelier than chance")


class RecommendExclusions(BaseModel):
    """Products never recommended, e.g. gift cards, bags, services."""

    model_config = _BLOCK

    skus: list[str] = []
    product_groups: list[str] = []


class RecommendConfig(BaseModel):
    """The built-in recommender (``hub recommend``) and the default ``recommendations`` of trigger payloads."""

    model_config = _BLOCK

    followups: FollowupConfig = FollowupConfig()
    bestsellers_window: _Duration = Field(default=timedelta(days=365), description="bestsellers: sold in this")
    exclude: RecommendExclusions = RecommendExclusions()
    triggers: RecommendationsConfig | None = Field(
        default=None, description="every trigger's payload gets recommendations like this, unless it says otherwise"
    )


class TriggerConfig(BaseModel):
    """An event (or a date) that makes a candidate message for a customer; contact pressure then decides."""

    model_config = _BLOCK

    name: _LoaderName = ""
    description: str = ""
    on: TriggerEvent
    message_type: MessageTypeName
    where: SegmentExpression | None = Field(default=None, description="customers it may fire for")
    filter: TriggerFilter = TriggerFilter()
    segment: SegmentName | None = Field(default=None, description="segment_entered/left; a campaign's audience")
    after: _Duration = Field(default=timedelta(hours=2), description="cart_abandoned: no order within this time")
    factor: float = Field(default=1.5, gt=0, description="win_back: overdue by this factor of mean days between")
    min_orders: PositiveInt = Field(default=2, description="win_back: orders needed for a personal rhythm")
    before: _Duration = Field(default=timedelta(days=14), description="points_expiring: this long before expiry")
    schedule: Annotated[str | None, AfterValidator(_check_cron)] = Field(default=None, description="campaign: cron")
    delay: _Duration | None = Field(default=None, description="wait this long after the event before deciding")
    max_age: _Duration = Field(
        default=timedelta(days=2),
        description="an order, cart or change older than this when hub first sees it fires nothing (no mail for "
        "last year's orders on a first run)",
    )
    variants: dict[str, PositiveInt] = Field(default={}, description="A/B/n variant -> weight, by a stable hash")
    branches: list[Branch] = []
    to: dict[DestinationName, TriggerTarget] = Field(default={}, description="targets when the branch names none")
    accessories: int = Field(default=3, ge=0, description="recommended accessories in the payload")
    recommendations: RecommendationsConfig | None = Field(
        default=None, description="a recommendations block in the payload (default: recommend.triggers)"
    )
    from_: list[Literal["cart", "wishlist"]] = Field(
        default=["cart", "wishlist"],
        alias="from",
        min_length=1,
        description="back_in_stock/price_drop: fire for customers with the product in an abandoned cart, on a "
        "wishlist, or both",
    )
    cart_max_age: _Duration = Field(
        default=timedelta(days=30),
        description="back_in_stock/price_drop: only carts last changed this long before the product's change",
    )
    min_drop: _MinDrop = Field(
        default="5%",
        validate_default=True,
        description="price_drop: the least drop that fires: a share of the old price (10%) or an amount (100)",
    )

    @model_validator(mode="after")
    def _fits_event(self) -> TriggerConfig:
        for field_name, key, kinds in (
            ("from_", "from", PRODUCT_TRIGGERS),
            ("cart_max_age", "cart_max_age", PRODUCT_TRIGGERS),
            ("min_drop", "min_drop", ("price_drop",)),
        ):
            if field_name in self.model_fields_set and self.on not in kinds:
                raise ValueError(f"{key}: is for {' and '.join(kinds)} triggers, not {self.on}")
        if self.on in ("segment_entered", "segment_left", "campaign") and self.segment is None:
            raise ValueError(f"a {self.on} trigger needs segment:")
        if self.on == "campaign" and self.schedule is None:
            raise ValueError("a campaign trigger needs schedule: (a cron expression)")
        if not self.to and not any(branch.to for branch in self.branches):
            raise ValueError("give to: (destination -> trigger_id), on the trigger or on its branches")
        return self


# --- contact pressure ------------------------------------------------------------------------------------------------


class MessageType(BaseModel):
    """A kind of message for contact pressure: its channel and priority, and how long it may be held."""

    model_config = _BLOCK

    channel: Annotated[str, AfterValidator(_check_name)] = "email"
    priority: Priority = "triggered"
    max_hold: _Duration = Field(default=timedelta(days=3), description="held longer than this: suppressed")
    description: str = ""


class Cap(BaseModel):
    """At most ``max`` sends ``per`` period, of the listed message types (or of every type on ``channel``).

    Transactional messages are never capped, but they count. ``then`` says what happens to a message over the cap:
    ``hold`` (until the cap has room) or ``drop`` (suppressed).
    """

    model_config = _BLOCK

    name: str
    message_types: list[MessageTypeName] = []
    channel: str | None = None
    max: PositiveInt
    per: _Duration
    then: Literal["hold", "drop"] = "hold"

    @model_validator(mode="after")
    def _scope(self) -> Cap:
        if not self.message_types and self.channel is None:
            raise ValueError("give message_types or channel")
        return self


class Quarantine(BaseModel):
    """After a send of one of ``after``, keep the customer out of ``keep_out_of`` for ``for`` (``hold`` or ``drop``).

    A pushed segment whose ``message_type`` is kept out loses the customer for the window, and gets them back.
    """

    model_config = _BLOCK

    name: str
    after: list[MessageTypeName]
    keep_out_of: list[MessageTypeName]
    for_: _Duration = Field(alias="for")
    then: Literal["hold", "drop"] = "drop"


class Exclusions(BaseModel):
    """Who gets no message. Transactional messages ignore all but ``erased``."""

    model_config = _BLOCK

    b2b: Literal["all"] | list[MessageTypeName] = Field(default=[], description="message types B2B customers never get")
    require_consent: bool = Field(default=True, description="an opt-in on the message type's channel is needed")
    bounce_events: list[str] = Field(default=["email_bounced"], description="event types that stop e-mail")


class ContactPressureConfig(BaseModel):
    """Message types, caps, quarantines and exclusions: what decides send, hold or suppress for each candidate."""

    model_config = _BLOCK

    message_types: dict[Annotated[str, AfterValidator(_check_name)], MessageType] = {}
    caps: list[Cap] = []
    quarantines: list[Quarantine] = []
    exclusions: Exclusions = Exclusions()
