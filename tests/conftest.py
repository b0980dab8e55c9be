"""Shared fixtures: a real PostgreSQL for every test that needs one, never a mock.

One embedded server (pgserver) per test session, in a short temporary directory; a template
database migrated once; each test gets its own fresh database cloned from the template.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import psycopg
import pytest
from localsite import LocalSite

from pipeline import embedded, store
from pipeline.config import Settings

TEMPLATE = "nr_template"


@pytest.fixture(scope="session")
def pg_state_dir():
    # Short path: the server's Unix socket lives in its data directory.
    path = Path(tempfile.mkdtemp(prefix="nrt", dir="/tmp"))
    yield path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded.stop(path / "pg")
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin(pg_state_dir) -> str:
    """DSN of the test server's `postgres` database."""
    return embedded.start(pg_state_dir / "pg")


@pytest.fixture(scope="session")
def template_db(pg_admin) -> str:
    store.db.ensure_database(pg_admin, TEMPLATE)
    with psycopg.connect(psycopg.conninfo.make_conninfo(pg_admin, dbname=TEMPLATE), autocommit=True) as conn:
        store.migrations.migrate(conn)
    return TEMPLATE


def _fresh_db(pg_admin: str, template: str | None):
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        tmpl = psycopg.sql.SQL(" TEMPLATE {}").format(psycopg.sql.Identifier(template)) if template else psycopg.sql.SQL("")
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}{}").format(psycopg.sql.Identifier(name), tmpl))
    return name, psycopg.conninfo.make_conninfo(pg_admin, dbname=name)


def _drop_db(pg_admin: str, name: str) -> None:
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


@pytest.fixture
def db_dsn(pg_admin, template_db):
    """A fresh, migrated database for this test only."""
    name, dsn = _fresh_db(pg_admin, template_db)
    yield dsn
    _drop_db(pg_admin, name)


@pytest.fixture(scope="session")
def make_db(pg_admin, template_db):
    """For fixtures wider than one test: make_db() gives the DSN of a fresh migrated database,
    dropped at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name, dsn = _fresh_db(pg_admin, template_db)
        made.append(name)
        return dsn

    yield make
    for name in made:
        _drop_db(pg_admin, name)


@pytest.fixture
def empty_db_dsn(pg_admin):
    """A fresh database with no schema at all."""
    name, dsn = _fresh_db(pg_admin, None)
    yield dsn
    _drop_db(pg_admin, name)


@pytest.fixture
def conn(db_dsn):
    with psycopg.connect(db_dsn) as c:
        yield c


@pytest.fixture
def settings(db_dsn, tmp_path) -> Settings:
    return Settings(database_url=db_dsn, state_dir=tmp_path / "state", allow_private_networks=True,
                    per_host_delay=0.0, connect_timeout=2.0, read_timeout=2.0)


@pytest.fixture
def site():
    s = LocalSite().start()
    yield s
    s.stop()


@pytest.fixture
def feeds_file(tmp_path):
    """Write a feeds.yaml for the test and return a function giving Settings that use it."""
    path = tmp_path / "feeds.yaml"

    def write(urls: list[str]) -> Path:
        path.write_text("feeds:\n" + "".join(f"  - url: {u}\n    name: feed {i}\n" for i, u in enumerate(urls)))
        return path

    return write


@pytest.fixture
def run(db_dsn, tmp_path):
    """`newsroom ARGS...` in-process on the test's database, at a terminal `columns` wide."""
    from click.testing import CliRunner

    from pipeline.cli import main

    env = {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path / "state"),
           "NEWSROOM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}

    def invoke(*args: str, columns: int = 200):
        return CliRunner().invoke(main, list(args), env={**env, "COLUMNS": str(columns)}, catch_exceptions=False)

    return invoke
