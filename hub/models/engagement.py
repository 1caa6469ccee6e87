"""Behavioural events (web, app, email engagement), unique per (source connector, external id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UTCDateTime


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_event_source_external"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    external_id: str
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    type: str = Field(index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    payload_json: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    loaded_at: datetime = Field(sa_type=UTCDateTime)
