"""Database fixtures: a migrated SQLite file and a migrated PostgreSQL database per test.

PostgreSQL is the real server (``DIGITFLOW_TEST_POSTGRES``, default the local
one with trust auth); a throwaway database is created for the test session and
dropped at its end, and each test starts from an empty schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory, upgrade_schema

POSTGRES_ADMIN_URL = os.environ.get("DIGITFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[URL]:
    """A fresh database on the PostgreSQL server for this test session; dropped afterwards."""
    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"digitflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL not reachable at {admin_url.render_as_string()} ({exc.orig}); set DIGITFLOW_TEST_POSTGRES"
        )
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def engine_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digitflow.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as connection:  # every test starts from an empty schema
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture
def engine(engine_url):
    engine = make_engine(engine_url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
