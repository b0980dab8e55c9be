"""Keeping the database to size over months: pruning old raw pages and feed polls, VACUUM
(ANALYZE), table sizes (`newsroom prune`, `newsroom db sizes`, the news_maintenance DAG).

Pruning never touches articles, their text, entities, mentions, topics or sources: only
`raw_pages` (the downloaded pages, by far the largest table) and `feed_polls` (one row per poll).
It deletes in small batches, each its own transaction, so it never holds many locks for long and
can be stopped and re-run at any point (a second run finds nothing more to do).

The rule for raw pages: only those of articles past extraction (`extracted`, `tagged`, `failed`)
and not claimed right now. An article still waiting for extraction (`fetched`) keeps its page
however old it is; one sent back to extraction (`newsroom retag --stages extract`) is `fetched`
again, and the two never interleave (queue.RAW_PAGES_LOCK). A pruned article can no longer be
re-extracted (retag --stages tag still works: it reads the stored text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from pipeline.store.queue import RAW_PAGES_LOCK
from pipeline.store.rollup import compact as compact_rollup

BATCH = 10_000  # rows per transaction

# The tables VACUUM (ANALYZE) visits each day: the big ones, the ones pruning empties, and the
# topic rollup's deltas (appended and deleted all day: every read scans them).
VACUUMED = ("articles", "raw_pages", "article_entities", "article_topics", "feed_polls", "article_sources",
            "entities", "topic_day_deltas", "topic_day_counts")

_PRUNABLE_PAGES = """
    FROM raw_pages p JOIN articles a ON a.id = p.article_id
   WHERE p.fetched_at < %(cutoff)s
     AND a.status IN ('extracted', 'tagged', 'failed')
     AND (a.claimed_until IS NULL OR a.claimed_until < now())"""
# The bytes a page holds (what a deletion frees once vacuumed): its compressed page, either kind.
_PAGE_BYTES = "coalesce(octet_length(p.raw_gz), 0) + coalesce(octet_length(p.html_gz), 0)"
_POLL_BYTES = "pg_column_size(f.*)"

_COUNT_PAGES = f"SELECT count(*), coalesce(sum({_PAGE_BYTES}), 0) {_PRUNABLE_PAGES}"
_DELETE_PAGES = f"""
    WITH doomed AS (SELECT p.article_id {_PRUNABLE_PAGES}
                     ORDER BY p.fetched_at LIMIT %(batch)s FOR UPDATE OF p SKIP LOCKED),
         gone AS (DELETE FROM raw_pages p USING doomed d WHERE p.article_id = d.article_id
                  RETURNING {_PAGE_BYTES} AS n)
    SELECT count(*), coalesce(sum(n), 0) FROM gone"""  # noqa: S608 (constant fragments only)
# (the row sizes taken apart from the aggregate, as the deletion takes them: inside sum() a row is
# formed differently and measures a byte less)
_COUNT_POLLS = f"""
    WITH doomed AS MATERIALIZED (SELECT {_POLL_BYTES} AS n FROM feed_polls f WHERE f.started_at < %(cutoff)s)
    SELECT count(*), coalesce(sum(n), 0) FROM doomed"""  # noqa: S608 (constant fragments only)
_DELETE_POLLS = f"""
    WITH doomed AS (SELECT f.id, {_POLL_BYTES} AS n FROM feed_polls f WHERE f.started_at < %(cutoff)s
                     ORDER BY f.started_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED),
         gone AS (DELETE FROM feed_polls f USING doomed d WHERE f.id = d.id RETURNING d.n)
    SELECT count(*), coalesce(sum(n), 0) FROM gone"""  # noqa: S608 (constant fragments only)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune deleted (or, dry, would delete): rows and the bytes they hold."""

    raw_pages: int = 0
    raw_page_bytes: int = 0
    polls: int = 0
    poll_bytes: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"raw_pages": self.raw_pages, "raw_page_bytes": self.raw_page_bytes, "polls": self.polls,
                "poll_bytes": self.poll_bytes, "dry_run": self.dry_run}


@dataclass(frozen=True, slots=True)
class TableSize:
    """One table's disk use in bytes: its rows (heap), TOAST (large values: pages, bodies) and
    indexes; `rows` is the planner's estimate (exact after VACUUM/ANALYZE)."""

    table: str
    rows: int
    heap: int
    toast: int
    indexes: int
    total: int


def prune(conn: psycopg.Connection, *, raw_pages_before: datetime | None, polls_before: datetime | None,
          dry_run: bool = False, batch: int = BATCH) -> Pruned:
    """Delete raw pages fetched before `raw_pages_before` (see the module's rule) and feed polls
    started before `polls_before` (None: leave that table alone), `batch` rows per transaction;
    `dry_run`: count them and the bytes they hold, change nothing. Needs an autocommit connection
    (each batch commits on its own)."""
    if not conn.autocommit:
        raise ValueError("prune() needs an autocommit connection: each batch is its own transaction")
    pages = polls = (0, 0)
    if raw_pages_before is not None:
        pages = _count(conn, _COUNT_PAGES, raw_pages_before) if dry_run else \
            _batches(conn, _DELETE_PAGES, raw_pages_before, batch, lock=True)
    if polls_before is not None:
        polls = _count(conn, _COUNT_POLLS, polls_before) if dry_run else \
            _batches(conn, _DELETE_POLLS, polls_before, batch, lock=False)
    if not dry_run:
        compact_rollup(conn)  # the topic rollup's deltas, folded while the database is being tidied
    return Pruned(raw_pages=pages[0], raw_page_bytes=pages[1], polls=polls[0], poll_bytes=polls[1], dry_run=dry_run)


def _count(conn: psycopg.Connection, query: str, cutoff: datetime) -> tuple[int, int]:
    n, size = conn.execute(query, {"cutoff": cutoff}).fetchone()
    return int(n), int(size)


def _batches(conn: psycopg.Connection, query: str, cutoff: datetime, batch: int, *, lock: bool) -> tuple[int, int]:
    rows = size = 0
    while True:
        with conn.transaction():
            if lock:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (RAW_PAGES_LOCK,))
            n, b = conn.execute(query, {"cutoff": cutoff, "batch": batch}).fetchone()
        rows, size = rows + n, size + int(b)
        if n < batch:
            return rows, size


def vacuum_analyze(conn: psycopg.Connection, tables: Sequence[str] = VACUUMED) -> list[str]:
    """VACUUM (ANALYZE) the tables (space freed by pruning becomes reusable, the planner's
    statistics fresh). VACUUM cannot run inside a transaction: needs an autocommit connection."""
    if not conn.autocommit:
        raise ValueError("vacuum_analyze() needs an autocommit connection")
    unknown = set(tables) - set(VACUUMED)
    if unknown:
        raise ValueError(f"not a table Newsroom vacuums: {', '.join(sorted(unknown))}")
    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
    return list(tables)


def table_sizes(conn: psycopg.Connection) -> list[TableSize]:
    """Every table of the schema, largest first."""
    rows = conn.execute(
        """SELECT c.relname, greatest(c.reltuples, 0)::bigint,
                  pg_table_size(c.oid) - coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
                  coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
                  pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
             FROM pg_class c
            WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace
            ORDER BY pg_total_relation_size(c.oid) DESC, c.relname""").fetchall()
    return [TableSize(table=r[0], rows=int(r[1]), heap=int(r[2]), toast=int(r[3]), indexes=int(r[4]),
                      total=int(r[5])) for r in rows]
