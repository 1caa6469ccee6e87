"""Alembic environment: hub passes its own connection; migrations are the only way the schema changes."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql import sqltypes as satypes

import hub.models  # noqa: F401  (registers every table on SQLModel.metadata)
from hub.db import Money, UTCDateTime

target_metadata = SQLModel.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render hub's column types as portable SQLAlchemy types, so migrations do not import hub.db."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, Money):
        return "sa.Numeric(18, 4)"
    if type_ == "type" and isinstance(obj, satypes.AutoString):
        return "sa.String()"
    return False


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("hub runs migrations with its own connection; use `hub db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
