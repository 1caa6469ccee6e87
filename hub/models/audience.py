"""What the audience steps compute and decide: attributes, segment memberships, trigger candidates, contact log.

Every table here is derived: ``hub compute`` and ``hub audience`` rebuild it from the commerce model, except the
decisions (``audience_candidate``, ``contact_log``, ``variant_assignment``), which are history and never rebuilt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from hub.db import UTCDateTime


class CustomerAttributes(SQLModel, table=True):
    """One row per live customer: the computed attributes segments and triggers read (see hub/audience/catalog.py).

    Windowed figures (``orders_window``, ``monetary_window``) are as of ``computed_at``; time-relative ones
    (days since last order, age) are not stored but derived from the clock when an expression reads them.
    """

    __tablename__ = "customer_attributes"
    __table_args__ = (Index("ix_customer_attributes_tier", "tier"),)

    customer_id: int = Field(primary_key=True)
    first_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    orders_window: int = 0
    orders_lifetime: int = 0
    monetary_window: float = 0.0
    monetary_lifetime: float = 0.0
    returns_value: float = 0.0
    return_rate: float | None = None
    avg_order_value: float | None = None
    r_score: int | None = None
    f_score: int | None = None
    m_score: int | None = None
    rfm_segment: str | None = None
    clv_historical: float = 0.0
    clv_predicted: float | None = None
    expected_purchases: float | None = None
    p_alive: float | None = None
    tier: str | None = None
    mean_days_between: float | None = None
    median_days_between: float | None = None
    expected_next_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    favourite_store: str | None = None
    favourite_channel: str | None = None
    product_groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = Field(sa_type=UTCDateTime)


class CustomerGroup(SQLModel, table=True):
    """A product group a customer has bought from, and whether they own accessories for it."""

    __tablename__ = "customer_group"

    customer_id: int = Field(primary_key=True)
    product_group: str = Field(primary_key=True)
    first_bought_at: datetime = Field(sa_type=UTCDateTime)
    last_bought_at: datetime = Field(sa_type=UTCDateTime)
    orders: int = 0
    main_last_bought_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accessory_owned: bool = False
    accessory_last_bought_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ModelFit(SQLModel, table=True):
    """A fitted model (``bgnbd``, ``gamma_gamma``): its parameters, so an incremental compute reuses them."""

    __tablename__ = "model_fit"

    name: str = Field(primary_key=True)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    customers: int = 0
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fitted_at: datetime = Field(sa_type=UTCDateTime)


class SegmentMembership(SQLModel, table=True):
    """Who is in a segment now, and since when."""

    __tablename__ = "segment_membership"
    __table_args__ = (Index("ix_segment_membership_customer", "customer_id"),)

    segment: str = Field(primary_key=True)
    customer_id: int = Field(primary_key=True)
    since: datetime = Field(sa_type=UTCDateTime)


class SegmentChange(SQLModel, table=True):
    """Every entry into and exit from a segment, in order: what ``segment_entered``/``segment_left`` triggers read."""

    __tablename__ = "segment_change"
    __table_args__ = (Index("ix_segment_change_customer", "customer_id", "segment"),)

    id: int | None = Field(default=None, primary_key=True)
    segment: str
    customer_id: int
    change: str  # entered | left
    #: Written by a segment's first evaluation: it records who was already in, so no segment trigger fires for it.
    initial: bool = False
    at: datetime = Field(sa_type=UTCDateTime)


class SegmentState(SQLModel, table=True):
    """The last evaluation of a segment: when, its definition's hash, and its figures."""

    __tablename__ = "segment_state"

    segment: str = Field(primary_key=True)
    definition_hash: str
    members: int = 0
    entered: int = 0
    left: int = 0
    evaluated_at: datetime = Field(sa_type=UTCDateTime)


class SegmentPush(SQLModel, table=True):
    """Which customers a destination holds in a pushed segment: the diff against it becomes outbox rows."""

    __tablename__ = "segment_push"

    destination: str = Field(primary_key=True)
    segment: str = Field(primary_key=True)
    customer_id: int = Field(primary_key=True)
    since: datetime = Field(sa_type=UTCDateTime)


class AudienceCandidate(SQLModel, table=True):
    """A message a trigger fired for a customer, deduplicated by ``key`` (e.g. trigger, customer and order).

    ``status``: waiting (until ``due_at``, the trigger's delay), held (until ``hold_until``), sent, suppressed.
    ``branch``, ``variant`` and ``payload`` are set when it is decided, from the data at that moment.
    """

    __tablename__ = "audience_candidate"
    __table_args__ = (
        Index("ix_audience_candidate_due", "status", "due_at"),
        Index("ix_audience_candidate_customer", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    trigger: str
    message_type: str
    customer_id: int
    ref: str | None = None  # what fired it: an order id, a cart id, a segment change id, a date
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fired_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = "waiting"
    hold_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    branch: str | None = None
    variant: str | None = None
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    rule: str | None = None
    reason: str | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ContactLog(SQLModel, table=True):
    """Every decision about a candidate message: send, hold (until when) or suppress, and the rule that decided.

    Caps and quarantines count the ``send`` rows; ``hub explain`` reads it back in plain words.
    """

    __tablename__ = "contact_log"
    __table_args__ = (
        Index("ix_contact_log_customer", "customer_id", "at"),
        Index("ix_contact_log_sends", "customer_id", "decision", "message_type", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    candidate_id: int | None = Field(default=None, index=True)
    customer_id: int
    trigger: str | None = None
    message_type: str
    channel: str
    priority: str
    decision: str  # send | hold | suppress
    rule: str
    reason: str
    hold_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    destinations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(sa_type=UTCDateTime)


class VariantAssignment(SQLModel, table=True):
    """The A/B/n variant a customer was given in an experiment (a trigger), kept so it never changes."""

    __tablename__ = "variant_assignment"

    experiment: str = Field(primary_key=True)
    customer_id: int = Field(primary_key=True)
    variant: str
    assigned_at: datetime = Field(sa_type=UTCDateTime)


class AudienceState(SQLModel, table=True):
    """Watermarks of the audience steps (the last order, cart, segment change or date a trigger looked at)."""

    __tablename__ = "audience_state"

    name: str = Field(primary_key=True)
    value: Any = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = Field(sa_type=UTCDateTime)
