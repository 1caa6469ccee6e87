"""Databases for the engine's tests: the model's tables created straight from the metadata.

The real schema comes from Alembic migrations; the engine steps only need the tables, so ``create_all`` on a
fresh database per test is enough here and keeps the tests independent of the migration history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import SQLModel

import hub.models  # noqa: F401  # registers every table on SQLModel.metadata
from hub.db import make_engine


def _make_database(url: str) -> Engine:
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    return engine


@pytest.fixture(scope="session")
def make_database() -> Callable[[str], Engine]:
    """Build an engine on a URL with every table of hub's model created; the caller disposes of it.

    Session-scoped so that hypothesis tests, which need a fresh database per example, can use it.
    """
    return _make_database


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """A SQLite file with hub's tables, for the many tests where the dialect does not matter."""
    engine = _make_database(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def any_engine(database_url: str) -> Iterator[Engine]:
    """hub's tables on each dialect hub supports (SQLite, PostgreSQL): for statements that differ."""
    engine = _make_database(database_url)
    yield engine
    engine.dispose()
