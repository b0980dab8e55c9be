"""The migration runner: sql/migrations/NNNN_name.sql applied once each, in order, under an
advisory lock, each in its own transaction and recorded with a checksum; then sql/views."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import psycopg

from pipeline.errors import MigrationError

log = logging.getLogger(__name__)


_MIGRATION_LOCK = 0x4E657773  # "News": one advisory lock key for the migration runner


def sql_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    packaged = package / "sql"  # inside a wheel (pyproject: force-include)
    return packaged if packaged.is_dir() else package.parent / "sql"


def _migration_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.sql"))
    for f in files:
        if not re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", f.name):
            raise MigrationError(f"migration file name {f.name} does not match NNNN_name.sql")
    return files


def migrate(conn: psycopg.Connection, root: Path | None = None) -> list[str]:
    """Apply pending migrations in filename order, then (re)create views. Return what was applied.

    Needs an autocommit connection: each file runs in its own transaction, under an advisory
    lock so two processes migrating at once apply each file exactly once.
    """
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection")
    root = root or sql_dir()
    applied: list[str] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    text PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
        for path in _migration_files(root / "migrations"):
            text = path.read_text(encoding="utf-8")
            version, checksum = path.name[:4], hashlib.sha256(text.encode()).hexdigest()
            if version in done:
                if done[version] != checksum:
                    raise MigrationError(
                        f"migration {path.name} was edited after it was applied; add a new migration instead"
                    )
                continue
            try:
                with conn.transaction():
                    conn.execute(text)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (version, path.name, checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {path.name} failed and was rolled back: SQLSTATE {exc.sqlstate}: "
                    f"{str(exc).strip().splitlines()[0]}"
                ) from exc
            applied.append(path.name)
            log.info("applied migration %s", path.name)
        views = sorted((root / "views").glob("*.sql")) if (root / "views").is_dir() else []
        if views:
            try:
                with conn.transaction():
                    for path in views:
                        conn.execute(path.read_text(encoding="utf-8"))
            except psycopg.Error as exc:
                raise MigrationError(f"view {path.name} failed and was rolled back: {exc}") from exc
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied


def applied_migrations(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]


def migration_status(conn: psycopg.Connection, root: Path | None = None) -> tuple[list[str], list[str], list[str]]:
    """(applied, pending, unknown) migration file names, reading only: pending are the files not
    applied yet (all of them in a database never migrated), unknown the applied ones this code
    has no file for (the database was migrated by a newer Newsroom)."""
    files = [p.name for p in _migration_files((root or sql_dir()) / "migrations")]
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return [], files, []
    applied = applied_migrations(conn)
    done = {name[:4] for name in applied}
    known = {name[:4] for name in files}
    return ([a for a in applied if a[:4] in known], [f for f in files if f[:4] not in done],
            [a for a in applied if a[:4] not in known])
