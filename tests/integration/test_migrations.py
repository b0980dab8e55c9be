"""The migration runner against a real PostgreSQL."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pipeline import store
from pipeline.errors import MigrationError

SCHEMA_SNAPSHOT = """
SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT tablename, indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), '', ''
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1, 2, 3
"""


def _snapshot(dsn):
    with psycopg.connect(dsn) as c:
        return c.execute(SCHEMA_SNAPSHOT).fetchall()


def test_migrate_twice_leaves_the_same_schema(empty_db_dsn):
    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        first = store.migrations.migrate(c)
    before = _snapshot(empty_db_dsn)
    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        second = store.migrations.migrate(c)
        names = store.migrations.applied_migrations(c)
    assert first and first == names
    assert second == []
    assert _snapshot(empty_db_dsn) == before
    tables = {row[0] for row in before}
    for t in ("feeds", "feed_polls", "articles", "article_sources", "raw_pages", "entities",
              "article_entities", "topics", "article_topics", "ingest_runs", "schema_migrations"):
        assert t in tables


def test_two_processes_migrating_at_once_apply_each_file_once(empty_db_dsn, tmp_path):
    env = {**os.environ, "NEWSROOM_DATABASE_URL": empty_db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "pipeline.cli", "db", "migrate"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    applied_counts = sorted(int(out.split()[1]) for out, _, _ in results)
    expected = len(list((store.migrations.sql_dir() / "migrations").glob("*.sql")))
    assert applied_counts == [0, 0, expected]
    with psycopg.connect(empty_db_dsn) as c:
        assert c.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == expected


def _sql_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "migrations").mkdir()
    for name, text in files.items():
        (tmp_path / "migrations" / name).write_text(text)
    return tmp_path


def test_failing_migration_is_rolled_back_whole(empty_db_dsn, tmp_path):
    root = _sql_tree(tmp_path, {
        "0001_ok.sql": "CREATE TABLE a (id int);",
        "0002_bad.sql": "CREATE TABLE b (id int); INSERT INTO nope VALUES (1);",
    })
    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        with pytest.raises(MigrationError, match=r"0002_bad.sql failed.*42P01"):
            store.migrations.migrate(c, root)
        assert store.migrations.applied_migrations(c) == ["0001_ok.sql"]
        assert c.execute("SELECT to_regclass('b')").fetchone()[0] is None  # nothing half-applied
        assert c.execute("SELECT to_regclass('a')").fetchone()[0] == "a"
        # the lock was released: a fixed file applies
        (root / "migrations" / "0002_bad.sql").write_text("CREATE TABLE b (id int);")
        assert store.migrations.migrate(c, root) == ["0002_bad.sql"]


def test_edited_migration_is_refused(empty_db_dsn, tmp_path):
    root = _sql_tree(tmp_path, {"0001_ok.sql": "CREATE TABLE a (id int);"})
    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        store.migrations.migrate(c, root)
        (root / "migrations" / "0001_ok.sql").write_text("CREATE TABLE a (id bigint);")
        with pytest.raises(MigrationError, match="edited"):
            store.migrations.migrate(c, root)


def test_badly_named_migration_is_refused(empty_db_dsn, tmp_path):
    root = _sql_tree(tmp_path, {"1_x.sql": "SELECT 1;"})
    with psycopg.connect(empty_db_dsn, autocommit=True) as c, pytest.raises(MigrationError, match="NNNN"):
        store.migrations.migrate(c, root)


def test_views_are_applied_and_reapplied(empty_db_dsn, tmp_path):
    root = _sql_tree(tmp_path, {"0001_ok.sql": "CREATE TABLE a (id int);"})
    (root / "views").mkdir()
    (root / "views" / "v_a.sql").write_text("CREATE OR REPLACE VIEW v_a AS SELECT id FROM a;")
    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        store.migrations.migrate(c, root)
        store.migrations.migrate(c, root)
        assert c.execute("SELECT count(*) FROM v_a").fetchone()[0] == 0
