"""PostgreSQL: connections, migrations and every read and write. The only module that imports psycopg.

Functions take an open connection and leave transaction control to the caller unless their
docstring says otherwise. Every write is an upsert against a natural key, so re-running a stage
never duplicates rows. Text is stripped of NUL characters, which Postgres rejects.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import conninfo, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pipeline import PIPELINE_VERSION, embedded
from pipeline.config import Settings
from pipeline.errors import ConfigError, DatabaseUnavailable, MigrationError, TransientError
from pipeline.records import (
    Extraction,
    FeedEntry,
    FeedSpec,
    Mention,
    PollResult,
    RawPage,
    TopicDef,
    TopicTag,
)
from pipeline.text import safe_text
from pipeline.workqueue import log_stale

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "newsroom"
_MIGRATION_LOCK = 0x4E657773  # "News": one advisory lock key for the migration runner
# SQLSTATE classes worth retrying: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "40", "53", "57"}


# --- text hygiene ---------------------------------------------------------------------------

def clean(text: str | None) -> str | None:
    """Strip NUL and lone surrogates, which Postgres or psycopg refuse."""
    return safe_text(text) if text else text


def _clean_all(items: Iterable[str]) -> list[str]:
    return [clean(s) for s in items if s]


# --- connections ----------------------------------------------------------------------------

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


def _validate_dsn(url: str) -> str:
    # Accept SQLAlchemy-style URLs users copy from Airflow settings.
    url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)
    try:
        conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)
        raise ConfigError(f"NEWSROOM_DATABASE_URL is malformed ({reason}); expected postgresql://user:pass@host:5432/db") from None
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


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10, application_name="newsroom")
    except psycopg.OperationalError as exc:
        reason = scrub("; ".join(line.strip() for line in str(exc).strip().splitlines()) or "no reason given", dsn)
        raise DatabaseUnavailable(
            f"cannot connect to {redact(dsn)}: {reason} (check NEWSROOM_DATABASE_URL, or unset it to use the embedded server)"
        ) from None
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"NEWSROOM_DATABASE_URL is malformed: {scrub(str(exc), dsn)}") from None


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
            raise TransientError(f"database error {exc.sqlstate or ''}: {str(exc).strip()[:300]}") from exc
        raise


# --- migrations -----------------------------------------------------------------------------

def sql_dir() -> Path:
    packaged = Path(__file__).parent / "sql"  # inside a wheel
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "sql"


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


# --- feeds ----------------------------------------------------------------------------------

def upsert_feeds(conn: psycopg.Connection, specs: Sequence[FeedSpec], *, disable_missing: bool = True) -> dict[str, int]:
    """Insert or update feeds from the user's list; disable (never delete) feeds no longer listed."""
    counts = {"inserted": 0, "updated": 0, "disabled": 0, "unchanged": 0}
    with conn.cursor() as cur:
        for spec in specs:
            row = cur.execute(
                """INSERT INTO feeds (url, name, tags, poll_interval_s)
                   VALUES (%(url)s, %(name)s, %(tags)s, %(interval)s)
                   ON CONFLICT (url) DO UPDATE
                      SET name = EXCLUDED.name, tags = EXCLUDED.tags,
                          poll_interval_s = EXCLUDED.poll_interval_s, enabled = true, updated_at = now()
                    WHERE (feeds.name, feeds.tags, feeds.poll_interval_s, feeds.enabled)
                          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.tags, EXCLUDED.poll_interval_s, true)
                   RETURNING (xmax = 0) AS inserted""",
                {"url": clean(spec.url), "name": clean(spec.name), "tags": _clean_all(spec.tags),
                 "interval": spec.poll_interval},
            ).fetchone()
            if row is None:
                counts["unchanged"] += 1
            else:
                counts["inserted" if row[0] else "updated"] += 1
        if disable_missing:
            cur.execute(
                "UPDATE feeds SET enabled = false, updated_at = now() WHERE enabled AND NOT (url = ANY(%s))",
                ([clean(s.url) for s in specs],),
            )
            counts["disabled"] = cur.rowcount
    return counts


def upsert_entries(conn: psycopg.Connection, feed_id: int, entries: Sequence[FeedEntry]) -> list[int]:
    """Store a feed's entries as articles (deduped by the feed's guid, then canonical URL) and
    record that this feed carried each one. Return the ids of articles that are new."""
    new_ids: list[int] = []
    with conn.cursor() as cur:
        for e in entries:
            row = cur.execute(
                """WITH by_guid AS (
                       SELECT article_id AS id FROM article_sources
                        WHERE feed_id = %(feed)s AND guid = %(guid)s),
                   ins AS (
                       INSERT INTO articles (url, first_url, guid, first_feed_id, title, summary,
                                             feed_published_at, author, pipeline_version)
                       SELECT %(url)s, %(entry_url)s, %(guid)s, %(feed)s, %(title)s, %(summary)s,
                              %(published)s, %(author)s, %(version)s
                        WHERE NOT EXISTS (SELECT 1 FROM by_guid)
                       ON CONFLICT (url) DO UPDATE SET updated_at = articles.updated_at
                       RETURNING id, (xmax = 0) AS inserted),
                   target AS (
                       SELECT id, false AS inserted FROM by_guid
                       UNION ALL SELECT id, inserted FROM ins),
                   src AS (
                       INSERT INTO article_sources (article_id, feed_id, guid, entry_url)
                       SELECT id, %(feed)s, %(guid)s, %(entry_url)s FROM target
                       ON CONFLICT (article_id, feed_id) DO UPDATE SET last_seen_at = now()
                       RETURNING article_id)
                   SELECT id, inserted FROM target""",
                {"feed": feed_id, "url": clean(e.url), "entry_url": clean(e.entry_url),
                 "guid": clean(e.guid), "title": clean(e.title), "summary": clean(e.summary),
                 "published": e.published, "author": clean(", ".join(e.authors)) or None,
                 "version": PIPELINE_VERSION},
            ).fetchone()
            if row and row[1]:
                new_ids.append(row[0])
    return new_ids


def record_poll(conn: psycopg.Connection, result: PollResult, *, default_interval: int,
                token: str | None = None) -> list[int] | None:
    """Record one poll: its entries, a `feed_polls` row and the feed's health, and release the
    feed's claim. Return new article ids, or None (nothing written) when the claim `token` was
    lost to another worker. Re-recording the same poll (same feed and start time) changes nothing.
    """
    if token is not None and not _feeds_held(conn, token, [result.feed_id]):
        return None
    return _record_poll(conn, result, default_interval)


def record_polls(conn: psycopg.Connection, results: Sequence[PollResult], *, default_interval: int,
                 token: str) -> dict[int, list[int] | None]:
    """record_poll for many feeds claimed under one token, with one claim check for them all."""
    held = _feeds_held(conn, token, [r.feed_id for r in results])
    return {r.feed_id: _record_poll(conn, r, default_interval) if r.feed_id in held else None for r in results}


def _feeds_held(conn: psycopg.Connection, token: str, ids: Sequence[int]) -> set[int]:
    """Of `ids`, the feeds still claimed under `token`, locked until the transaction ends; the
    others' results are dropped (their claim ran out and another worker has them)."""
    held = {r[0] for r in conn.execute("SELECT id FROM feeds WHERE id = ANY(%s) AND claim_token = %s ORDER BY id "
                                       "FOR UPDATE", (list(ids), token)).fetchall()}
    for feed_id in sorted(set(ids) - held):
        log_stale("poll", f"feed {feed_id}", token)
    return held


def _record_poll(conn: psycopg.Connection, result: PollResult, default_interval: int) -> list[int]:
    new_ids = upsert_entries(conn, result.feed_id, result.entries) if result.entries else []
    inserted = conn.execute(
        """INSERT INTO feed_polls (feed_id, started_at, finished_at, outcome, http_status,
                                   entries_seen, entries_new, error_class, error_message, transient)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (feed_id, started_at) DO NOTHING""",
        (result.feed_id, result.started_at, result.finished_at, result.outcome, result.http_status,
         len(result.entries), len(new_ids), result.error_class, clean(result.error_message),
         result.transient),
    ).rowcount
    if not inserted:
        conn.execute("UPDATE feeds SET claim_token = NULL, claimed_by = NULL, claimed_until = NULL WHERE id = %s",
                     (result.feed_id,))
        return new_ids
    ok = result.outcome != "error"
    conn.execute(
        """UPDATE feeds SET
               last_polled_at = %(finished)s,
               last_status = %(outcome)s,
               last_http_status = %(status)s,
               etag = CASE WHEN %(ok)s THEN coalesce(%(etag)s, etag) ELSE etag END,
               last_modified = CASE WHEN %(ok)s THEN coalesce(%(lm)s, last_modified) ELSE last_modified END,
               body_hash = CASE WHEN %(ok)s THEN coalesce(%(hash)s, body_hash) ELSE body_hash END,
               last_success_at = CASE WHEN %(ok)s THEN %(finished)s ELSE last_success_at END,
               last_new_article_at = CASE WHEN %(new)s > 0 THEN %(finished)s ELSE last_new_article_at END,
               consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE consecutive_failures + 1 END,
               last_error_class = CASE WHEN %(ok)s THEN NULL ELSE %(eclass)s END,
               last_error = CASE WHEN %(ok)s THEN NULL ELSE %(emsg)s END,
               next_poll_at = coalesce(%(next)s,
                   %(finished)s + make_interval(secs => coalesce(poll_interval_s, %(default)s))),
               claim_token = NULL, claimed_by = NULL, claimed_until = NULL,
               updated_at = now()
         WHERE id = %(id)s""",
        {"finished": result.finished_at, "outcome": result.outcome, "status": result.http_status,
         "ok": ok, "etag": clean(result.etag), "lm": clean(result.last_modified),
         "hash": result.body_hash, "new": len(new_ids), "eclass": result.error_class,
         "emsg": clean(result.error_message), "next": result.next_poll_at,
         "default": default_interval, "id": result.feed_id},
    )
    return new_ids


def feed_health(conn: psycopg.Connection) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT f.id, f.name, f.url, f.enabled, f.last_status, f.last_http_status, f.last_polled_at,
                  f.last_success_at, f.last_new_article_at, f.next_poll_at, f.consecutive_failures,
                  f.last_error_class, f.last_error, f.created_at, f.tags,
                  (SELECT count(*) FROM article_sources s WHERE s.feed_id = f.id) AS articles
             FROM feeds f ORDER BY f.enabled DESC, f.consecutive_failures DESC, f.name"""
    ).fetchall()


# --- articles: stage results (claiming is pipeline/workqueue.py) ------------------------------

# An article that finished a stage: ready for the next one at once, its claim released.
_DONE = ("attempts = 0, claim_token = NULL, claimed_by = NULL, claimed_until = NULL, last_error = NULL, "
         "failed_stage = NULL, next_attempt_at = now(), updated_at = now()")
_STORE_PAGE_SQL = """UPDATE articles SET status = 'fetched', final_url = %s, fetched_at = now(), {_DONE}
            WHERE id = %s AND (%s::uuid IS NULL OR claim_token = %s::uuid)""".replace("{_DONE}", _DONE)
_SAVE_EXTRACTION_SQL = """UPDATE articles SET
               status = 'extracted', title = coalesce(%(title)s, title), author = coalesce(%(author)s, author),
               language = %(language)s, published_at = %(published)s, published_source = %(psource)s,
               body = %(body)s, word_count = %(words)s, content_hash = %(hash)s,
               extractor_version = %(xver)s, pipeline_version = %(pver)s, extracted_at = now(),
               minhash = %(sig)s, minhash_bands = %(bands)s, cluster_id = NULL, is_original = NULL,
               {_DONE}
         WHERE id = %(id)s AND (%(token)s::uuid IS NULL OR claim_token = %(token)s::uuid)""".replace("{_DONE}", _DONE)
_MARK_TAGGED_SQL = """UPDATE articles SET status = 'tagged', nlp_version = %s, rules_version = %s, tagged_at = now(),
                  priority = 0, {_DONE}
            WHERE id = %s""".replace("{_DONE}", _DONE)


def store_page(conn: psycopg.Connection, page: RawPage, *, token: str | None = None) -> bool:
    """Keep the downloaded page (gzip) and move its article to `fetched`. False (nothing written)
    when the claim `token` was lost to another worker."""
    moved = conn.execute(
        _STORE_PAGE_SQL,
        (clean(page.final_url), page.article_id, token, token),
    ).rowcount
    if not moved:
        log_stale("page", f"article {page.article_id}", token)
        return False
    data = clean(page.html).encode("utf-8")
    conn.execute(
        """INSERT INTO raw_pages (article_id, http_status, final_url, content_type, charset, headers,
                                  size_bytes, html_gz, fetched_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (article_id) DO UPDATE SET
               http_status = EXCLUDED.http_status, final_url = EXCLUDED.final_url,
               content_type = EXCLUDED.content_type, charset = EXCLUDED.charset,
               headers = EXCLUDED.headers, size_bytes = EXCLUDED.size_bytes,
               html_gz = EXCLUDED.html_gz, fetched_at = now()""",
        (page.article_id, page.http_status, clean(page.final_url), clean(page.content_type),
         clean(page.charset), Jsonb({clean(k): clean(v) for k, v in page.headers.items()}), len(data),
         gzip.compress(data, compresslevel=6)),
    )
    return True


def load_page(conn: psycopg.Connection, article_id: int) -> str | None:
    row = conn.execute("SELECT html_gz FROM raw_pages WHERE article_id = %s", (article_id,)).fetchone()
    return gzip.decompress(row[0]).decode("utf-8") if row else None


def save_extraction(conn: psycopg.Connection, article_id: int, ex: Extraction,
                    fingerprint: tuple[bytes, Sequence[int]] | None = None, *, token: str | None = None) -> bool:
    """Store the clean text; the article leaves its cluster until the cluster stage places it again.
    False (nothing written) when the claim `token` was lost to another worker."""
    signature, bands = fingerprint if fingerprint else (None, None)
    written = conn.execute(
        _SAVE_EXTRACTION_SQL,
        {"title": clean(ex.title), "author": clean(ex.author), "language": clean(ex.language),
         "published": ex.published_at, "psource": ex.published_source, "body": clean(ex.text),
         "words": ex.word_count, "hash": ex.content_hash, "xver": ex.extractor_version,
         "pver": PIPELINE_VERSION, "sig": signature, "bands": list(bands) if bands else None, "id": article_id,
         "token": token},
    ).rowcount
    if not written:
        log_stale("extraction", f"article {article_id}", token)
    return bool(written)


def load_texts(conn: psycopg.Connection, ids: Sequence[int]) -> dict[int, tuple[str | None, str]]:
    """{id: (title, body)} for extracted articles."""
    rows = conn.execute("SELECT id, title, body FROM articles WHERE id = ANY(%s) AND body IS NOT NULL",
                        (list(ids),)).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


_CLUSTER_LOCK = 0x436C7573  # "Clus": one clustering worker at a time keeps clusters consistent


def cluster_pending(conn: psycopg.Connection, *, min_similarity: float, limit: int = 500,
                    window_days: int = 30) -> dict[str, int]:
    """Give extracted articles without a cluster one: that of their near-duplicates (by MinHash
    band keys, confirmed by signature similarity), or their own. The earliest copy is the
    original. Runs in the caller's transaction under an advisory lock."""
    from pipeline.dedup import similarity

    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CLUSTER_LOCK,))
    pending = conn.execute(
        """SELECT id, minhash, minhash_bands, coalesce(published_at, discovered_at)
             FROM articles
            WHERE cluster_id IS NULL AND body IS NOT NULL AND status IN ('extracted', 'tagged')
            ORDER BY coalesce(published_at, discovered_at), id
            LIMIT %s""", (limit,)).fetchall()
    counts = {"clustered": 0, "duplicates": 0}
    for article_id, signature, bands, when in pending:
        counts["clustered"] += 1
        try:
            with conn.transaction():
                if _cluster_one(conn, article_id, signature, bands, when, min_similarity, window_days, similarity):
                    counts["duplicates"] += 1
        except Exception as exc:
            if is_infrastructure(exc):
                raise
            # One article's odd fingerprint must not stop clustering: it stands alone.
            log.exception("clustering article %s failed; it gets a cluster of its own", article_id)
            counts["errors"] = counts.get("errors", 0) + 1
            conn.execute("UPDATE articles SET cluster_id = id, is_original = true WHERE id = %s", (article_id,))
    return counts


def _cluster_one(conn, article_id, signature, bands, when, min_similarity, window_days, similarity) -> bool:
    """Place one article in its near-duplicates' cluster or its own; True if it joined one."""
    near = []
    if signature is not None:
        rows = conn.execute(
            """SELECT id, minhash, cluster_id, coalesce(published_at, discovered_at) AS t
                 FROM articles
                WHERE minhash_bands && %(bands)s AND id <> %(id)s AND cluster_id IS NOT NULL
                  AND coalesce(published_at, discovered_at)
                      BETWEEN %(t)s - make_interval(days => %(w)s) AND %(t)s + make_interval(days => %(w)s)""",
            {"bands": bands, "id": article_id, "t": when, "w": window_days},
        ).fetchall()
        near = [r for r in rows if similarity(r[1], signature) >= min_similarity]
    if not near:
        conn.execute("UPDATE articles SET cluster_id = id, is_original = true WHERE id = %s", (article_id,))
        return False
    cluster = min(near, key=lambda r: (r[3], r[0]))[2]
    first = conn.execute(
        "SELECT min(coalesce(published_at, discovered_at)) FROM articles WHERE cluster_id = %s",
        (cluster,)).fetchone()[0]
    original = first is None or when < first
    if original:
        conn.execute("UPDATE articles SET is_original = false WHERE cluster_id = %s", (cluster,))
    conn.execute("UPDATE articles SET cluster_id = %s, is_original = %s WHERE id = %s",
                 (cluster, original, article_id))
    return True


def select_for_reprocessing(conn: psycopg.Connection, *, stage: str, since: datetime | None = None,
                            ids: Sequence[int] | None = None, limit: int | None = None) -> list[int]:
    """Send articles back to the start of `stage` (extract: needs a stored page; tag: a body), as
    backlog: claimed only when no live work is due, so a big retag never delays new articles.

    Their current annotations stay until the stage replaces them, one article at a time. At most
    `limit` articles (newest first), all when None.
    """
    if stage == "extract":
        where = "EXISTS (SELECT 1 FROM raw_pages p WHERE p.article_id = a.id) AND a.status <> 'discovered'"
        target = "fetched"
    elif stage == "tag":
        where = "a.body IS NOT NULL AND a.status IN ('extracted', 'tagged', 'failed')"
        target = "extracted"
    else:
        raise ValueError(f"unknown stage {stage!r}")
    rows = conn.execute(
        sql.SQL("""UPDATE articles a SET status = %(target)s, failed_stage = NULL, last_error = NULL,
                       attempts = 0, next_attempt_at = now(), claimed_until = NULL, claim_token = NULL,
                       claimed_by = NULL, updated_at = now(),
                       -- live work already waiting for this stage stays live
                       priority = CASE WHEN a.status = %(target)s AND a.priority = 0 THEN 0 ELSE 1 END
                  WHERE a.id IN (
                        SELECT a.id FROM articles a
                         WHERE {where}
                           AND (%(since)s::timestamptz IS NULL OR a.discovered_at >= %(since)s)
                           AND (%(ids)s::bigint[] IS NULL OR a.id = ANY(%(ids)s))
                           AND (a.status <> 'failed' OR a.failed_stage IN ('extract', 'tag'))
                           AND (a.claimed_until IS NULL OR a.claimed_until < now())
                         ORDER BY a.discovered_at DESC, a.id DESC
                         LIMIT %(limit)s)
              RETURNING a.id""").format(where=sql.SQL(where)),
        {"target": target, "since": since, "ids": list(ids) if ids is not None else None, "limit": limit},
    ).fetchall()
    return sorted(r[0] for r in rows)


# --- entities and topics --------------------------------------------------------------------

def entity_key(label: str, name: str, wikidata_id: str | None = None) -> str:
    """The natural key of an entity: its Wikidata id where known, else label and folded name."""
    if wikidata_id:
        return wikidata_id
    # Accents folded too: "Davutoğlu" in one article and "Davutoglu" in another are one entity.
    folded = "".join(c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c))
    return f"{label}:{' '.join(folded.split())}"


def upsert_entities(conn: psycopg.Connection, mentions: Iterable[Mention]) -> dict[str, int]:
    """Make sure each mention's canonical entity exists; return {key: id}. Aliases accumulate.

    Set-based (three statements for any number of entities) and in key order, so concurrent
    taggers take row locks in the same order.
    """
    wanted: dict[str, tuple[str, str, str | None, set[str]]] = {}
    for m in mentions:
        key = entity_key(m.label, m.canonical, m.wikidata_id)
        _, _, _, aliases = wanted.setdefault(key, (clean(m.canonical), m.label, m.wikidata_id, set()))
        if m.surface != m.canonical:
            aliases.add(clean(m.surface))
    if not wanted:
        return {}
    keys = sorted(wanted)
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO entities (key, name, label, wikidata_id, aliases) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            [(k, *wanted[k][:3], sorted(wanted[k][3])) for k in keys],
        )
        # An entity known by its Wikidata id keeps one row when the gazetteer renames or relabels it.
        cur.executemany(
            """UPDATE entities SET name = %s, label = %s, updated_at = now()
                WHERE key = %s AND (name, label) IS DISTINCT FROM (%s, %s)""",
            [(wanted[k][0], wanted[k][1], k, wanted[k][0], wanted[k][1]) for k in keys if wanted[k][2]],
        )
        with_aliases = [(sorted(wanted[k][3]), k) for k in keys if wanted[k][3]]
        if with_aliases:
            cur.executemany(
                """UPDATE entities
                      SET aliases = ARRAY(SELECT DISTINCT unnest(aliases || %s::text[]) ORDER BY 1), updated_at = now()
                    WHERE key = %s AND NOT (%s::text[] <@ aliases)""",
                [(a, k, a) for a, k in with_aliases],
            )
        rows = cur.execute("SELECT key, id FROM entities WHERE key = ANY(%s)", (keys,)).fetchall()
    ids = dict(rows)
    missing = set(keys) - set(ids)
    if missing:
        # A Wikidata id already held under another key (a gazetteer edit): keep one entity per id.
        for k in sorted(missing):
            qid = wanted[k][2]
            row = conn.execute("SELECT id FROM entities WHERE wikidata_id = %s", (qid,)).fetchone() if qid else None
            if row is None:
                raise RuntimeError(f"entity {k!r} could not be stored")
            ids[k] = row[0]
    return ids


def replace_mentions(conn: psycopg.Connection, article_id: int, mentions: Sequence[Mention], model_version: str,
                     entity_ids: dict[str, int] | None = None) -> int:
    """Replace an article's mentions with these (one model version per article). Uses COPY."""
    return replace_mentions_many(conn, {article_id: mentions}, model_version, entity_ids)


def replace_mentions_many(conn: psycopg.Connection, mentions_by_article: dict[int, Sequence[Mention]],
                          model_version: str, entity_ids: dict[str, int] | None = None) -> int:
    """Replace the mentions of several articles at once: one DELETE and one COPY for the lot,
    inside the caller's transaction (so each article's replacement is all or nothing)."""
    if entity_ids is None:
        entity_ids = upsert_entities(conn, (m for ms in mentions_by_article.values() for m in ms))
    conn.execute("DELETE FROM article_entities WHERE article_id = ANY(%s)", (list(mentions_by_article),))
    rows = 0
    with conn.cursor() as cur, cur.copy(
        "COPY article_entities (article_id, start_char, end_char, entity_id, surface, label, model_version) FROM STDIN"
    ) as copy:
        for article_id, mentions in mentions_by_article.items():
            seen: set[tuple[int, int]] = set()
            for m in mentions:
                if (m.start, m.end) in seen:
                    continue
                seen.add((m.start, m.end))
                copy.write_row((article_id, m.start, m.end, entity_ids[entity_key(m.label, m.canonical, m.wikidata_id)],
                                clean(m.surface), m.label, model_version))
            rows += len(seen)
    return rows


def upsert_topics(conn: psycopg.Connection, defs: Sequence[TopicDef]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for d in defs:
        row = conn.execute(
            """INSERT INTO topics (slug, name, description, rules_version) VALUES (%s, %s, %s, %s)
               ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
                   rules_version = EXCLUDED.rules_version, updated_at = now()
               RETURNING id""",
            (d.slug, clean(d.name), clean(d.description), d.rules_version),
        ).fetchone()
        ids[d.slug] = row[0]
    return ids


def replace_topics(conn: psycopg.Connection, article_id: int, tags: Sequence[TopicTag], rules_version: str,
                   topic_ids: dict[str, int]) -> int:
    """Replace an article's topic tags with these."""
    conn.execute("DELETE FROM article_topics WHERE article_id = %s", (article_id,))
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO article_topics (article_id, topic_id, score, evidence, rules_version)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (article_id, topic_id) DO UPDATE SET score = EXCLUDED.score,
                   evidence = EXCLUDED.evidence, rules_version = EXCLUDED.rules_version, tagged_at = now()""",
            [(article_id, topic_ids[t.slug], t.score, Jsonb(t.evidence), rules_version) for t in tags],
        )
    return len(tags)


def mark_tagged(conn: psycopg.Connection, article_id: int, *, nlp_version: str, rules_version: str) -> None:
    """Move an article to `tagged`. The tag stage checks its claim first (workqueue.holding)."""
    conn.execute(
        _MARK_TAGGED_SQL,
        (nlp_version, rules_version, article_id),
    )


# --- runs -----------------------------------------------------------------------------------

_RUN_COUNTERS = ("feeds_polled", "feeds_ok", "feeds_failed", "articles_new", "pages_fetched",
                 "pages_failed", "articles_extracted", "articles_tagged", "articles_failed")


def start_run(conn: psycopg.Connection, run_key: str, trigger: str) -> int:
    """Create (or find, on a retry) the `ingest_runs` row for this run."""
    return conn.execute(
        """INSERT INTO ingest_runs (run_key, trigger) VALUES (%s, %s)
           ON CONFLICT (run_key) DO UPDATE SET status = 'running', finished_at = NULL, errors = '[]'
           RETURNING id""",
        (clean(run_key), trigger),
    ).fetchone()[0]


def finish_run(conn: psycopg.Connection, run_key: str, *, status: str, counts: dict[str, int],
               durations: dict[str, float] | None = None, errors: list[dict] | None = None,
               details: dict | None = None) -> str | None:
    """Set a run's final counts (replacing, not adding to, any earlier attempt's). A run that a
    failed task already marked failed stays failed, with that task's reason. Returns the status."""
    unknown = set(counts) - set(_RUN_COUNTERS)
    if unknown:
        raise ValueError(f"unknown run counters: {sorted(unknown)}")
    sets = sql.SQL("").join(
        sql.SQL(", {} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in counts
    )
    params = {**counts, "status": status, "key": run_key, "durations": Jsonb(durations or {}),
              "errors": Jsonb(errors or []), "details": Jsonb(details or {})}
    row = conn.execute(
        sql.SQL(
            """UPDATE ingest_runs SET
                      -- a task that failed earlier in this run (fail_run) keeps the run failed
                      status = CASE WHEN status = 'failed' THEN 'failed' ELSE %(status)s END,
                      finished_at = now(), durations = %(durations)s,
                      errors = coalesce((SELECT jsonb_agg(e) FROM jsonb_array_elements(errors) e
                                          WHERE e->>'stage' = 'airflow'), '[]'::jsonb) || %(errors)s,
                      details = %(details)s{sets}
                WHERE run_key = %(key)s
            RETURNING status"""
        ).format(sets=sets),
        params,
    ).fetchone()
    return row[0] if row else None


def fail_run(conn: psycopg.Connection, run_key: str, reason: str) -> None:
    conn.execute(
        """UPDATE ingest_runs SET status = 'failed', finished_at = now(),
                  errors = errors || jsonb_build_array(jsonb_build_object('stage', 'airflow', 'message', %s::text))
            WHERE run_key = %s""", (clean(reason)[:2000], run_key))


def failed_task_reasons(conn: psycopg.Connection, run_key: str) -> list[str]:
    """Why tasks of this run failed, as their failure callbacks recorded it (fail_run)."""
    return [r[0] for r in conn.execute(
        """SELECT e->>'message' FROM ingest_runs, jsonb_array_elements(errors) e
            WHERE run_key = %s AND e->>'stage' = 'airflow'""", (run_key,)).fetchall()]


def top_topics_of_run(conn: psycopg.Connection, run_key: str, limit: int = 5) -> list[tuple[str, int]]:
    """Topics most tagged since the run started."""
    return [tuple(r) for r in conn.execute(
        """SELECT t.slug, count(*) FROM article_topics at JOIN topics t ON t.id = at.topic_id
            WHERE at.tagged_at >= (SELECT started_at FROM ingest_runs WHERE run_key = %s)
            GROUP BY t.slug ORDER BY count(*) DESC, t.slug LIMIT %s""", (run_key, limit)).fetchall()]


def count_due_feeds(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM feeds WHERE enabled AND next_poll_at <= now()").fetchone()[0]


def count_rows(conn: psycopg.Connection, table: str) -> int:
    allowed = {"feeds", "feed_polls", "articles", "article_sources", "raw_pages", "entities",
               "article_entities", "topics", "article_topics", "ingest_runs"}
    if table not in allowed:
        raise ValueError(f"unknown table {table}")
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def stuck_articles(conn: psycopg.Connection, hours: float) -> dict[str, int]:
    """Live articles due for work for longer than `hours` and not leased: nothing is picking them
    up. Backlog (retag, backfill) waits behind live work by design and is not counted."""
    return dict(conn.execute(
        """SELECT status, count(*) FROM articles
            WHERE status IN ('discovered', 'fetched', 'extracted') AND priority = 0
              AND next_attempt_at < now() - make_interval(secs => %(s)s)
              AND (claimed_until IS NULL OR claimed_until < now())
            GROUP BY status""", {"s": hours * 3600}).fetchall())


def last_feed_success(conn: psycopg.Connection) -> datetime | None:
    return conn.execute("SELECT max(last_success_at) FROM feeds").fetchone()[0]


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM articles GROUP BY status").fetchall())


def now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT now()").fetchone()[0]
