"""Connections: the DSN in use (NEWSROOM_DATABASE_URL or the embedded server), sessions, how
database errors are judged (by SQLSTATE, never message text), and DSN redaction for messages.

Functions take an open connection and leave transaction control to the caller unless their
docstring says otherwise. Text is stripped of NUL and lone surrogates, which Postgres refuses.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import conninfo, sql

from pipeline import embedded
from pipeline.config import Settings
from pipeline.errors import ConfigError, DatabaseUnavailable, NewsroomError, TransientError
from pipeline.text import safe_text

log = logging.getLogger(__name__)


EMBEDDED_DBNAME = "newsroom"
# The longest a web page's query may run (ms): a page is read-only and never worth a stuck backend.
READ_TIMEOUT_MS = 5_000


# SQLSTATE classes worth retrying: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "40", "53", "57"}


def clean(text: str | None) -> str | None:
    """Strip NUL and lone surrogates, which Postgres or psycopg refuse."""
    return safe_text(text) if text else text


def _clean_all(items: Iterable[str]) -> list[str]:
    return [clean(s) for s in items if s]


def _secrets_of(dsn: str) -> list[str]:
    """Password-like parts of a DSN, found without trusting it to parse: the userinfo of a URL
    (everything between "://" and the last "@" before the path), and password= values."""
    found = []
    m = re.match(r"^\s*[A-Za-z][\w+.-]*://([^/?#]*)@", dsn)
    if m and ":" in m.group(1):
        found.append(m.group(1).split(":", 1)[1])
    for m in re.finditer(r"password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)", dsn, re.I):
        found.append(m.group(1).strip("'"))
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except (psycopg.Error, ValueError, TypeError):
        params = {}
    if params.get("password"):
        found.append(params["password"])
    return sorted({f for f in found if f}, key=len, reverse=True)


def scrub(text: str, dsn: str) -> str:
    """`text` (an error message about `dsn`) with the DSN's password removed, however it appears:
    whole, percent-decoded, or in pieces libpq quoted back."""
    from urllib.parse import unquote

    for secret in _secrets_of(dsn):
        for form in {secret, unquote(secret)}:
            text = text.replace(form, "***")
            for piece in form.split():  # an unencoded space splits it in libpq's message
                if len(piece) >= 3:
                    text = text.replace(piece, "***")
    return text


def redact(dsn: str) -> str:
    """The DSN with its password hidden, safe for logs and error messages, whatever its form and
    even when it does not parse."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except (psycopg.Error, ValueError, TypeError):
        masked = re.sub(r"^(\s*[A-Za-z][\w+.-]*://)[^/?#]*@", r"\1***@", dsn)
        masked = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", masked, flags=re.I)
        return scrub(masked, dsn)
    if "password" in params:
        params["password"] = "***"
    host = params.get("host", "")
    db = params.get("dbname", "")
    user = params.get("user", "")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}@{host}{port}/{db}" if host and not host.startswith("/") else (
        f"postgresql://{user}@/{db}?host={host}"
    )


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is worth retrying, judged by SQLSTATE class, never message text."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:
            # No SQLSTATE: the client lost the connection or could not make one.
            return isinstance(exc, psycopg.OperationalError)
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return False


def is_infrastructure(exc: BaseException) -> bool:
    """Whether an exception is about the machinery (database gone, out of disk or memory) rather
    than one item: those escape a stage so Airflow retries it; the rest are recorded on the item."""
    if isinstance(exc, MemoryError | DatabaseUnavailable | TransientError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOMEM):
        return True
    if isinstance(exc, psycopg.Error):
        if is_transient(exc) or isinstance(exc, psycopg.InterfaceError):
            return True
        # 53 insufficient resources (disk full), 58 system error, XX internal error
        return (exc.sqlstate or "")[:2] in {"53", "58", "XX"}
    return False


_ACCEPTED_FORMS = ("postgresql://user:pass@host:5432/db, postgres://..., "
                   "or a key=value DSN like 'host=db.example dbname=newsroom user=newsroom'")
# A URL's scheme (RFC 3986: a letter, then letters, digits, + - .), before the first colon.
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")


def _validate_dsn(url: str) -> str:
    if safe_text(url) != url:
        # libpq would cut the string at a NUL; bytes that are not UTF-8 arrive as lone surrogates
        raise ConfigError(f"NEWSROOM_DATABASE_URL contains a NUL or bytes that are not UTF-8 text; use {_ACCEPTED_FORMS}")
    # Accept SQLAlchemy-style URLs users copy from Airflow settings (postgresql+psycopg://),
    # and the scheme in any case.
    url = re.sub(r"^\s*postgres(ql)?(\+\w+)?://", "postgresql://", url, flags=re.I)
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("postgresql", "postgres"):
        # libpq would read "mysql://..." as a malformed key=value string and say so confusingly.
        name = scheme.group(1) if len(scheme.group(1)) <= 20 else scheme.group(1)[:20] + "..."
        raise ConfigError(f"NEWSROOM_DATABASE_URL is not a PostgreSQL DSN (it starts with {name + ':'!r}); "
                          f"use {_ACCEPTED_FORMS}")
    try:
        conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)
        raise ConfigError(f"NEWSROOM_DATABASE_URL is malformed ({reason}); expected {_ACCEPTED_FORMS}") from None
    return url


def dsn_params(dsn: str) -> dict[str, str]:
    return conninfo.conninfo_to_dict(dsn)


def embedded_dsn(settings: Settings, dbname: str = EMBEDDED_DBNAME) -> str:
    """Start (or reuse) the embedded server and make sure `dbname` exists; return its DSN."""
    admin = embedded.start(settings.pgdata)
    ensure_database(admin, dbname)
    host = conninfo.conninfo_to_dict(admin)["host"]
    return f"postgresql://postgres@/{quote(dbname)}?host={quote(host)}"


def ensure_database(admin_dsn: str, dbname: str) -> bool:
    """Create `dbname` if missing; return whether it was created. Safe under concurrency."""
    with connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return False  # another process created it first
        return True


_dsn_cache: dict[tuple[str | None, Path], str] = {}


def resolve_dsn(settings: Settings) -> str:
    """The DSN in use: NEWSROOM_DATABASE_URL, or the embedded server (started on demand)."""
    key = (settings.database_url, settings.pgdata)
    if key not in _dsn_cache:
        if settings.database_url:
            _dsn_cache[key] = _validate_dsn(settings.database_url)
        else:
            _dsn_cache[key] = embedded_dsn(settings)
    return _dsn_cache[key]


def forget_dsn(settings: Settings) -> None:
    """Drop the remembered DSN (the embedded server was stopped or removed in this process)."""
    _dsn_cache.pop((settings.database_url, settings.pgdata), None)


def connect(dsn: str, *, autocommit: bool = False, timeout: int = 10) -> psycopg.Connection:
    """A connection to `dsn`, given up after `timeout` seconds (libpq's connect_timeout: at least 2)."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=timeout, application_name="newsroom")
    except psycopg.OperationalError as exc:
        reason = scrub("; ".join(line.strip() for line in str(exc).strip().splitlines()) or "no reason given", dsn)
        raise DatabaseUnavailable(
            f"cannot connect to {redact(dsn)}: {reason} (check NEWSROOM_DATABASE_URL, or unset it to use the embedded server)"
        ) from None
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"NEWSROOM_DATABASE_URL is malformed: {scrub(str(exc), dsn)}") from None


def _described(exc: psycopg.Error) -> str:
    """A database error in one line for a log or a page: its SQLSTATE and the start of its message."""
    return f"database error {exc.sqlstate or ''}: {str(exc).strip()[:300]}"


@contextmanager
def session(settings: Settings, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection for one unit of work; commits on success, rolls back on error.

    A database error whose SQLSTATE says it is worth retrying is re-raised as TransientError.
    """
    conn = connect(resolve_dsn(settings), autocommit=autocommit)
    if not autocommit:
        # Work is idempotent and leased, so a commit lost in a crash is simply redone;
        # not waiting for the WAL flush makes thousands of small commits cheap.
        conn.execute("SET synchronous_commit = off")
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        if is_transient(exc):
            raise TransientError(_described(exc)) from exc
        raise


@contextmanager
def reading(settings: Settings, *, timeout_ms: int = READ_TIMEOUT_MS) -> Iterator[psycopg.Connection]:
    """A read-only connection (the web pages'): no statement can write, and none runs longer
    than `timeout_ms`, so a page never holds the database up."""
    conn = connect(resolve_dsn(settings), autocommit=True)
    try:
        conn.execute("SET default_transaction_read_only = on")
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(int(timeout_ms)),))
        yield conn
    except psycopg.Error as exc:
        # a page shows what went wrong; it never gets a driver's exception to turn into a 500
        if is_transient(exc):
            raise TransientError(_described(exc)) from exc
        raise NewsroomError(f"{_described(exc)} (has `newsroom db migrate` run since the upgrade?)") from exc
    finally:
        conn.close()


def server_version(conn: psycopg.Connection) -> str:
    """The server's version as it says it ("16.4")."""
    return conn.execute("SHOW server_version").fetchone()[0]


def now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT now()").fetchone()[0]


def count_rows(conn: psycopg.Connection, table: str) -> int:
    allowed = {"feeds", "feed_polls", "articles", "article_sources", "raw_pages", "entities",
               "article_entities", "topics", "article_topics", "ingest_runs"}
    if table not in allowed:
        raise ValueError(f"unknown table {table}")
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
