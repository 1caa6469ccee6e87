"""The golden customer, the identity keys that point at it, its consents and the merges that shaped it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UTCDateTime


class Customer(SQLModel, table=True):
    """One person (or company) across every system. A merged-away customer keeps its row, pointing at the survivor.

    ``source``, ``source_rank`` and ``source_updated_at`` record which connector last set the attributes, so that
    survivorship (configured source priority, then recency) can be decided in SQL, per batch.
    """

    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = None
    phone: str | None = None
    member_no: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    language: str | None = None
    company_name: str | None = None
    is_b2b: bool = False
    source: str | None = None
    source_rank: int = 0
    source_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    merged_into: int | None = Field(default=None, foreign_key="customer.id", index=True)
    #: Set when the person asked to be forgotten: no message of any kind goes to them.
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Identity(SQLModel, table=True):
    """A key that identifies a customer: (kind, system, value). ``system`` is '' for global keys
    (email, phone, member_no) and the connector's name for a system's own id (``external_id``)."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("kind", "system", "value", name="uq_identity_key"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str
    system: str = ""
    value: str
    source: str
    first_seen_at: datetime = Field(sa_type=UTCDateTime)


class Consent(SQLModel, table=True):
    """The current consent per customer and channel: the result of applying ``consent_event`` rows monotonically."""

    __tablename__ = "consent"

    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    channel: str = Field(primary_key=True)
    status: str
    at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    source: str
    evidence: str | None = None
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ConsentEvent(SQLModel, table=True):
    """Every consent statement hub has seen, applied or not: the audit trail. Re-syncs do not add duplicates."""

    __tablename__ = "consent_event"
    __table_args__ = (UniqueConstraint("customer_id", "fingerprint", name="uq_consent_event"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    channel: str
    status: str
    at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    source: str
    evidence: str | None = None
    applied: bool = False
    reason: str | None = None
    fingerprint: str
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class CustomerMerge(SQLModel, table=True):
    """One merge: which customer was folded into which, by which keys and rule, so it can be explained and undone."""

    __tablename__ = "customer_merge"

    id: int | None = Field(default=None, primary_key=True)
    survivor_id: int = Field(foreign_key="customer.id", index=True)
    merged_id: int = Field(foreign_key="customer.id", index=True)
    rule: str
    keys: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str
    run_id: int | None = None
    at: datetime = Field(sa_type=UTCDateTime)

    __table_args__ = (Index("ix_customer_merge_run", "run_id"),)
