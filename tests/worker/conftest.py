"""The real-database fixtures of tests/db, shared with the worker tests."""

from tests.db.conftest import engine_url, postgres_url  # noqa: F401
