"""The topic-per-day rollup (migration 0010): folding its deltas into its counts, and checking it.

`topic_day_counts` + the sum of `topic_day_deltas` is, at every moment and in every snapshot, the
number of tagged articles (and originals) per topic per UTC day of publication: the database's
triggers append a delta for every change to what it counts, whoever makes it. Compaction only
keeps the deltas few (a read adds them up); nothing is wrong when it has not run. It runs at the
end of every stage that writes (tag, extract, cluster, retag, prune), one compactor at a time:
another that finds it busy skips, its deltas are folded by the next.

Why deltas and not `UPDATE counts SET n = n + 1` in the triggers: two tag workers tagging the same
topic on the same day would wait on each other's row lock for the rest of their transactions (and
could deadlock, locking days in different orders); appending rows takes no lock anyone waits for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

_COMPACT_LOCK = 0x526F6C6C  # "Roll": one compactor at a time

# Every delta visible now, moved into the counts in one statement: a reader sees either the
# deltas or the counts they became, never both or neither. (Deltas of a topic deleted meanwhile
# are dropped: its counts went with it.) The rows that reach 0/0 are returned, then deleted.
_COMPACT = """
    WITH moved AS (DELETE FROM topic_day_deltas RETURNING topic_id, day, articles, originals),
         summed AS (SELECT m.topic_id, m.day, sum(m.articles)::bigint AS articles,
                           sum(m.originals)::bigint AS originals, count(*) AS deltas
                      FROM moved m
                     WHERE EXISTS (SELECT 1 FROM topics t WHERE t.id = m.topic_id)
                     GROUP BY m.topic_id, m.day),
         upserted AS (INSERT INTO topic_day_counts AS c (topic_id, day, articles, originals)
                      SELECT topic_id, day, articles, originals FROM summed
                       WHERE articles <> 0 OR originals <> 0
                      ON CONFLICT (topic_id, day) DO UPDATE
                         SET articles = c.articles + excluded.articles,
                             originals = c.originals + excluded.originals
                      RETURNING c.topic_id, c.day, c.articles, c.originals)
    SELECT (SELECT count(*) FROM moved),
           coalesce((SELECT array_agg(topic_id) FROM upserted WHERE articles = 0 AND originals = 0), '{}'),
           coalesce((SELECT array_agg(day) FROM upserted WHERE articles = 0 AND originals = 0), '{}')"""
_DROP_EMPTY = """
    DELETE FROM topic_day_counts c
     USING unnest(%s::bigint[], %s::date[]) z (topic_id, day)
     WHERE c.topic_id = z.topic_id AND c.day = z.day AND c.articles = 0 AND c.originals = 0"""

# The rollup against the base tables, for checks and tests: every (topic, day) where they differ.
_DIFFERENCES = """
    WITH base AS (
        SELECT at.topic_id, (a.published_effective AT TIME ZONE 'UTC')::date AS day, count(*) AS articles,
               count(*) FILTER (WHERE a.is_original IS NOT FALSE) AS originals
          FROM article_topics at JOIN articles a ON a.id = at.article_id
         GROUP BY 1, 2),
    rolled AS (
        SELECT topic_id, day, sum(articles)::bigint AS articles, sum(originals)::bigint AS originals
          FROM (SELECT topic_id, day, articles, originals FROM topic_day_counts
                UNION ALL
                SELECT topic_id, day, articles, originals FROM topic_day_deltas) r
         GROUP BY 1, 2)
    SELECT coalesce(b.topic_id, r.topic_id), coalesce(b.day, r.day), coalesce(b.articles, 0),
           coalesce(b.originals, 0), coalesce(r.articles, 0), coalesce(r.originals, 0)
      FROM base b FULL JOIN rolled r ON r.topic_id = b.topic_id AND r.day = b.day
     WHERE coalesce(b.articles, 0) <> coalesce(r.articles, 0)
        OR coalesce(b.originals, 0) <> coalesce(r.originals, 0)
     ORDER BY 1, 2"""


@dataclass(frozen=True, slots=True)
class Compacted:
    """What one compaction did: deltas folded, count rows dropped at zero; `skipped` when another
    compactor held the lock (its work, or the next run, folds these deltas)."""

    deltas: int = 0
    emptied: int = 0
    skipped: bool = False

    def as_dict(self) -> dict:
        return {"deltas": self.deltas, "emptied": self.emptied, "skipped": self.skipped}


def compact(conn: psycopg.Connection) -> Compacted:
    """Fold every committed delta into topic_day_counts, in a transaction of its own (commits what
    the caller had open first, as the stages do between batches). Skips at once when another
    compactor is at work. A foreign-key failure (a topic deleted in the instant between this
    statement's snapshot and its write) rolls back and skips: the deltas stay for the next run."""
    conn.commit()
    try:
        with conn.transaction():
            if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_COMPACT_LOCK,)).fetchone()[0]:
                return Compacted(skipped=True)
            moved, topics, days = conn.execute(_COMPACT).fetchone()
            emptied = conn.execute(_DROP_EMPTY, (topics, days)).rowcount if topics else 0
    except psycopg.errors.ForeignKeyViolation as exc:
        log.warning("topic rollup: compaction skipped, a topic was deleted meanwhile (%s)", exc.sqlstate)
        return Compacted(skipped=True)
    except psycopg.Error as exc:
        # Best effort: the stage that calls this has committed its work, and the deltas count as
        # they are until a later compaction folds them. Only a lost connection is the caller's.
        if conn.closed or conn.broken:
            raise
        log.warning("topic rollup: compaction skipped (%s: %s)", exc.sqlstate, str(exc).strip()[:200])
        return Compacted(skipped=True)
    if moved:
        log.debug("topic rollup: folded %d deltas, %d days emptied", moved, emptied)
    return Compacted(deltas=int(moved), emptied=int(emptied))


_REBUILD = """
    INSERT INTO topic_day_counts (topic_id, day, articles, originals)
    SELECT at.topic_id, (a.published_effective AT TIME ZONE 'UTC')::date, count(*),
           count(*) FILTER (WHERE a.is_original IS NOT FALSE)
      FROM article_topics at JOIN articles a ON a.id = at.article_id
     GROUP BY 1, 2"""


def rebuild(conn: psycopg.Connection) -> int:
    """Count the rollup again from the base tables (as migration 0010 filled it), in a transaction
    of its own that holds off writers to articles and article_topics while it reads them: the way
    back from a drift `differences` found (a statement the triggers cannot follow: see 0010).
    Returns the count rows written."""
    conn.commit()
    with conn.transaction():
        conn.execute("LOCK TABLE article_topics, articles IN SHARE MODE")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_COMPACT_LOCK,))
        conn.execute("DELETE FROM topic_day_deltas")
        conn.execute("DELETE FROM topic_day_counts")
        return conn.execute(_REBUILD).rowcount


def pending_deltas(conn: psycopg.Connection) -> int:
    """Deltas not compacted yet."""
    return int(conn.execute("SELECT count(*) FROM topic_day_deltas").fetchone()[0])


def differences(conn: psycopg.Connection) -> list[tuple]:
    """Every (topic_id, day, articles, originals as counted from the base tables, articles,
    originals as the rollup says) where the two differ: [] when the rollup is exact. Reads
    article_topics and articles in full: for checks and tests, not for every request."""
    return [tuple(r) for r in conn.execute(_DIFFERENCES).fetchall()]
