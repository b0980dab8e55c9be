"""Feeds and polls: the user's feed list, each poll's record and entries (as articles), and
feed health. Claiming feeds is queue.py's; a poll is recorded only under its claim."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from pipeline import PIPELINE_VERSION
from pipeline.records import FeedEntry, FeedSpec, PollResult
from pipeline.states import PollOutcome
from pipeline.store.db import _clean_all, clean
from pipeline.store.queue import RELEASED, feeds_held


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
                       -- a backfilled article a feed now carries: live work, with its outlet
                       ON CONFLICT (url) DO UPDATE SET updated_at = articles.updated_at,
                           first_feed_id = coalesce(articles.first_feed_id, EXCLUDED.first_feed_id),
                           priority = CASE WHEN articles.status = 'discovered' THEN 0 ELSE articles.priority END
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
    if token is not None and not feeds_held(conn, token, [result.feed_id]):
        return None
    return _record_poll(conn, result, default_interval)


def record_polls(conn: psycopg.Connection, results: Sequence[PollResult], *, default_interval: int,
                 token: str) -> dict[int, list[int] | None]:
    """record_poll for many feeds claimed under one token, with one claim check for them all."""
    held = feeds_held(conn, token, [r.feed_id for r in results])
    return {r.feed_id: _record_poll(conn, r, default_interval) if r.feed_id in held else None for r in results}


_RELEASE_FEED_SQL = f"UPDATE feeds SET {RELEASED} WHERE id = %s"  # noqa: S608 (constant fragments only)
_POLL_SQL = """INSERT INTO feed_polls (feed_id, started_at, finished_at, outcome, http_status,
                                   entries_seen, entries_new, error_class, error_message, transient)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (feed_id, started_at) DO NOTHING"""
_FEED_POLLED_SQL = f"""UPDATE feeds SET
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
               {RELEASED}, updated_at = now()
         WHERE id = %(id)s"""  # noqa: S608 (constant fragments only)


def _record_poll(conn: psycopg.Connection, result: PollResult, default_interval: int) -> list[int]:
    new_ids = upsert_entries(conn, result.feed_id, result.entries) if result.entries else []
    inserted = conn.execute(
        _POLL_SQL,
        (result.feed_id, result.started_at, result.finished_at, result.outcome, result.http_status,
         len(result.entries), len(new_ids), result.error_class, clean(result.error_message),
         result.transient),
    ).rowcount
    if not inserted:
        conn.execute(_RELEASE_FEED_SQL, (result.feed_id,))
        return new_ids
    ok = result.outcome != PollOutcome.ERROR
    conn.execute(
        _FEED_POLLED_SQL,
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


def make_all_due(conn: psycopg.Connection) -> int:
    """Every enabled feed due now (the demo's start: its site has just published). Returns how many."""
    return conn.execute("UPDATE feeds SET next_poll_at = now() WHERE enabled AND next_poll_at > now()").rowcount


def poll_schedule(conn: psycopg.Connection) -> dict:
    """How polling stands now: enabled feeds, how many are due, and the next one to come due
    (`next_at`, `next_name`; None when none is waiting), with the database's `now`."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT now() AS now,
                  (SELECT count(*) FROM feeds WHERE enabled) AS enabled,
                  (SELECT count(*) FROM feeds WHERE enabled AND next_poll_at <= now()) AS due,
                  n.next_poll_at AS next_at, n.name AS next_name
             FROM (SELECT 1) one
             LEFT JOIN LATERAL (SELECT next_poll_at, name FROM feeds
                                 WHERE enabled AND next_poll_at > now()
                                 ORDER BY next_poll_at, id LIMIT 1) n ON true"""
    ).fetchone()


def count_due_feeds(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM feeds WHERE enabled AND next_poll_at <= now()").fetchone()[0]


def last_feed_success(conn: psycopg.Connection) -> datetime | None:
    return conn.execute("SELECT max(last_success_at) FROM feeds").fetchone()[0]
