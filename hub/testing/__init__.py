"""hub's pytest plugin (entry point ``pytest11: hub``): fixtures for hub's own tests and for plugin authors.

Loaded by pytest at start-up in every project that has hub installed, so importing it must stay cheap: it
defines fixtures and starts nothing; a PostgreSQL server starts only when a test asks for one.
"""

from hub.testing.fixtures import database_url, pg_database_url, postgres_url, pytest_configure, sqlite_url

__all__ = ["database_url", "pg_database_url", "postgres_url", "pytest_configure", "sqlite_url"]
