"""Sync bookkeeping: cursors, run history with counts, and rejected input kept with its reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UTCDateTime


class SyncState(SQLModel, table=True):
    """The cursor of one (connector, stream), saved in the same transaction as the batch it covers."""

    __tablename__ = "sync_state"

    connector: str = Field(primary_key=True)
    stream: str = Field(primary_key=True)
    cursor: Any = Field(default=None, sa_column=Column(JSON))
    unknown_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_run_id: int | None = None
    updated_at: datetime = Field(sa_type=UTCDateTime)


class SyncRun(SQLModel, table=True):
    """One read of one (connector, stream): when, how it ended, and its counts (committed with each batch)."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_connector_stream", "connector", "stream", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    connector: str
    stream: str
    status: str  # running | succeeded | failed | interrupted
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    batches: int = 0
    records_read: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    customers_created: int = 0
    merges: int = 0
    #: Tombstones that deleted what the source had loaded, and those naming nothing it holds (see hub.engine.deletions).
    records_deleted: int = 0
    deletions_ignored: int = 0
    error: str | None = None


class Reject(SQLModel, table=True):
    """A raw record that could not be loaded, exactly as it arrived, with every reason. Never silently dropped."""

    __tablename__ = "reject"
    __table_args__ = (
        UniqueConstraint("connector", "stream", "fingerprint", name="uq_reject_fingerprint"),
        Index("ix_reject_connector_stream", "connector", "stream"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = None
    connector: str
    stream: str
    record_key: str | None = None
    stage: str  # read | map | resolve
    errors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    payload: Any = Field(default=None, sa_column=Column(JSON))
    fingerprint: str
    created_at: datetime = Field(sa_type=UTCDateTime)
