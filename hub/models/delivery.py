"""The outbox and what delivery remembers per destination: sent hashes, remote ids, pauses, watermarks, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from hub.db import UTCDateTime

#: The kinds of outgoing effect. A destination declares which of them it handles.
MESSAGE_KINDS = ("contact_upsert", "contact_delete", "order", "segment_membership", "trigger", "product")
#: ``skipped`` is terminal and not an error (the destination had nothing to do); ``dead`` waits for an operator.
MESSAGE_STATUSES = ("pending", "in_flight", "sent", "dead", "skipped")


class Message(SQLModel, table=True):
    """One outgoing effect for one destination: the durable outbox row.

    Written in the same transaction as the decision that caused it; ``idempotency_key`` is unique, so deciding
    the same effect twice enqueues it once. ``claimed_by``/``lease_until`` say which dispatcher holds an
    ``in_flight`` row; ``dispatched_at`` is committed just before the request of an at-most-once kind leaves,
    so that after a crash hub knows which rows may have reached the destination and which certainly did not.
    ``error_class`` is the last outcome's class in the delivery taxonomy (invalid, rejected, auth, retryable,
    unknown, exhausted, skipped).
    """

    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_due", "destination", "status", "next_attempt_at"),
        Index("ix_message_customer", "destination", "customer_id", "status"),
        # The dispatcher claims one kind at a time, oldest due first: an ordered index scan with LIMIT.
        Index("ix_message_claim", "destination", "status", "kind", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    destination: str
    kind: str
    customer_id: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    idempotency_key: str = Field(unique=True)
    status: str = "pending"
    attempts: int = 0
    max_attempts: int | None = None
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = None
    error_class: str | None = None
    remote_ref: str | None = None
    claimed_by: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboundState(SQLModel, table=True):
    """Per destination and customer: the hash of the last payload enqueued, and the id the destination gave it.

    Change detection compares a freshly built payload with ``payload_hash``; only a difference enqueues a
    ``contact_upsert``. ``version`` counts the upserts enqueued and is part of their idempotency key
    (a customer changing A -> B -> A must be sent three times). ``remote_id`` (e.g. Voyado's contactId) lets later
    updates skip the lookup.
    """

    __tablename__ = "outbound_state"

    destination: str = Field(primary_key=True)
    customer_id: int = Field(primary_key=True)
    payload_hash: str | None = None
    version: int = 0
    remote_id: str | None = None
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DestinationState(SQLModel, table=True):
    """Per destination: whether it is paused (credentials refused) and how far change detection has looked."""

    __tablename__ = "destination_state"

    destination: str = Field(primary_key=True)
    paused: bool = False
    paused_reason: str | None = None
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    customers_scanned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    customers_swept_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_order_id: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


class OutboxAudit(SQLModel, table=True):
    """What operators did to the outbox (replays, resumes) and who did it."""

    __tablename__ = "outbox_audit"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, index=True)
    destination: str | None = None
    action: str
    actor: str
    detail: str | None = None
    at: datetime = Field(sa_type=UTCDateTime)
