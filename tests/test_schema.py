"""Migrations are the only way the schema changes: they match the models, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import hub.models  # noqa: F401  (registers the tables)
from hub.db import make_engine
from hub.errors import SchemaOutOfDate
from hub.schema import current_revision, ensure_current, head_revision, upgrade


def test_the_migrations_create_exactly_the_models_tables(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_brings_a_new_database_to_the_head_revision(sqlite_url):
    engine = make_engine(sqlite_url)
    assert upgrade(engine) == (None, head_revision())
    assert upgrade(engine) == (head_revision(), head_revision())


def test_a_database_without_the_schema_is_refused_with_what_to_run(sqlite_url):
    engine = make_engine(sqlite_url)
    with pytest.raises(SchemaOutOfDate, match=r"no hub schema yet; run `hub db upgrade`"):
        ensure_current(engine)


def test_a_database_behind_the_code_is_refused_naming_both_revisions(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    assert current_revision(engine) == "0000"
    with pytest.raises(SchemaOutOfDate, match=rf"revision 0000, this hub needs {head_revision()}"):
        ensure_current(engine)
