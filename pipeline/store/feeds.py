"""Feeds and polls: the user's feed list, each poll's record and entries (as articles), and
feed health. Claiming feeds is queue.py's; a poll is recorded only under its claim."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from pipeline import PIPELINE_VERSION
from pipeline.errors import NotFound, UserInputError
from pipeline.records import FeedEntry, FeedSpec, PollResult
from pipeline.states import DisabledReason, ErrorClass, FeedManager, PollOutcome
from pipeline.store.db import _clean_all, clean
from pipeline.store.queue import RELEASED, feeds_held
from pipeline.urls import site_of

log = logging.getLogger(__name__)

MOVE_AFTER = 3  # NEWSROOM_FEED_MOVE_AFTER's default


def upsert_feeds(conn: psycopg.Connection, specs: Sequence[FeedSpec], *, disable_missing: bool = True) -> dict[str, int]:
    """Sync the feeds file: insert or update the feeds it lists (found by URL, or by a URL they
    had before they moved), which the file then manages; disable (never delete) the feeds the
    file managed and no longer lists. Feeds added from the CLI are never touched unless the file
    lists them. A listed feed stays paused, removed or gone when the user or its server said so:
    only a feed the file itself had dropped comes back."""
    counts = {"inserted": 0, "updated": 0, "disabled": 0, "unchanged": 0}
    listed: list[int] = []
    with conn.cursor() as cur:
        for spec in specs:
            url = clean(spec.url)
            params = {"url": url, "name": clean(spec.name), "tags": _clean_all(spec.tags),
                      "interval": spec.poll_interval, "outlet": clean(spec.outlet), "file": FeedManager.FILE}
            found = _find_by_url(cur, url)
            if found is None:
                row = cur.execute(
                    """INSERT INTO feeds (url, name, tags, poll_interval_s, outlet, managed_by)
                       VALUES (%(url)s, %(name)s, %(tags)s, %(interval)s, %(outlet)s, %(file)s)
                       ON CONFLICT (url) DO NOTHING RETURNING id""", params).fetchone()
                if row is not None:
                    counts["inserted"] += 1
                    listed.append(row[0])
                    continue
                found = _find_by_url(cur, url)  # inserted meanwhile by another sync
                if found is None:
                    continue
            listed.append(found)
            changed = cur.execute(
                """UPDATE feeds SET name = %(name)s, tags = %(tags)s, poll_interval_s = %(interval)s,
                          outlet = %(outlet)s, managed_by = %(file)s,
                          enabled = enabled OR disabled_reason = 'unlisted',
                          next_poll_at = CASE WHEN disabled_reason = 'unlisted' THEN now() ELSE next_poll_at END,
                          disabled_at = CASE WHEN disabled_reason = 'unlisted' THEN NULL ELSE disabled_at END,
                          disabled_detail = CASE WHEN disabled_reason = 'unlisted' THEN NULL ELSE disabled_detail END,
                          disabled_reason = nullif(disabled_reason, 'unlisted'),
                          updated_at = now()
                    WHERE id = %(id)s
                      AND ((name, tags, poll_interval_s, outlet, managed_by) IS DISTINCT FROM
                           (%(name)s, %(tags)s::text[], %(interval)s::integer, %(outlet)s, %(file)s)
                           OR disabled_reason = 'unlisted')""", {**params, "id": found}).rowcount
            counts["updated" if changed else "unchanged"] += 1
        if disable_missing:
            cur.execute(
                """UPDATE feeds SET enabled = false, disabled_reason = 'unlisted', disabled_at = now(),
                          disabled_detail = 'no longer in the feeds file', updated_at = now()
                    WHERE enabled AND managed_by = 'file' AND NOT (id = ANY(%s))""", (listed,))
            counts["disabled"] = cur.rowcount
    return counts


def _find_by_url(cur: psycopg.Cursor, url: str) -> int | None:
    """The feed with this URL now, or the one that had it before it moved."""
    row = cur.execute(
        """SELECT id FROM feeds WHERE url = %(url)s
           UNION ALL SELECT feed_id FROM feed_url_history WHERE url = %(url)s
           LIMIT 1""", {"url": url}).fetchone()
    return row[0] if row else None


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
                                             feed_published_at, author, pipeline_version, site)
                       SELECT %(url)s, %(entry_url)s, %(guid)s, %(feed)s, %(title)s, %(summary)s,
                              %(published)s, %(author)s, %(version)s, %(site)s
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
                 "version": PIPELINE_VERSION, "site": clean(site_of(e.url)) or ""},
            ).fetchone()
            if row and row[1]:
                new_ids.append(row[0])
    return new_ids


def fill_sites(conn: psycopg.Connection, *, batch: int = 5000) -> int:
    """Set the site of articles stored before sites were (migration 0006), a batch per
    transaction; a no-op (one index probe) once done. Returns how many were set."""
    done = 0
    while True:
        with conn.transaction():
            rows = conn.execute(
                "SELECT id, url FROM articles WHERE site IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (batch,)).fetchall()
            if not rows:
                return done
            # '' for a URL without a host: set, so it is never looked at again
            with conn.cursor() as cur:
                cur.executemany("UPDATE articles SET site = %s WHERE id = %s",
                                [(clean(site_of(url)) or "", i) for i, url in rows])
            done += len(rows)


def record_poll(conn: psycopg.Connection, result: PollResult, *, default_interval: int,
                token: str | None = None, move_after: int = MOVE_AFTER) -> list[int] | None:
    """Record one poll: its entries, a `feed_polls` row and the feed's health, and release the
    feed's claim. Return new article ids, or None (nothing written) when the claim `token` was
    lost to another worker. Re-recording the same poll (same feed and start time) changes nothing.
    """
    if token is not None and not feeds_held(conn, token, [result.feed_id]):
        return None
    return _record_poll(conn, result, default_interval, move_after)


def record_polls(conn: psycopg.Connection, results: Sequence[PollResult], *, default_interval: int,
                 token: str, move_after: int = MOVE_AFTER) -> dict[int, list[int] | None]:
    """record_poll for many feeds claimed under one token, with one claim check for them all."""
    held = feeds_held(conn, token, [r.feed_id for r in results])
    return {r.feed_id: _record_poll(conn, r, default_interval, move_after) if r.feed_id in held else None
            for r in results}


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


def _record_poll(conn: psycopg.Connection, result: PollResult, default_interval: int, move_after: int) -> list[int]:
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
    if not ok:
        if result.error_class == ErrorClass.HTTP_410_GONE:
            set_disabled(conn, result.feed_id, DisabledReason.GONE,
                         f"HTTP 410 Gone at {result.finished_at:%Y-%m-%d %H:%M} UTC: the server says it is gone for good")
    else:
        _follow_redirect(conn, result, move_after)
    return new_ids


def _follow_redirect(conn: psycopg.Connection, result: PollResult, move_after: int) -> None:
    """Count the polls in a row that were redirected for good to the same URL; after
    `move_after` of them the feed moves there, its old URL kept in feed_url_history (where the
    feeds file's sync still finds it). If another feed already has the new URL, this one is
    disabled as `moved`: that feed carries on, with no duplicate polls."""
    polls = conn.execute(
        """UPDATE feeds SET redirect_polls = CASE WHEN %(to)s::text IS NULL THEN 0
                                                  WHEN redirect_url = %(to)s THEN redirect_polls + 1
                                                  ELSE 1 END,
                            redirect_url = %(to)s
            WHERE id = %(id)s RETURNING redirect_polls, url""", {"to": result.moved_to, "id": result.feed_id},
    ).fetchone()
    if polls is None or result.moved_to is None or polls[0] < move_after:
        return
    old_url, new_url = polls[1], result.moved_to
    other = conn.execute(
        """SELECT id, enabled, disabled_reason FROM feeds WHERE url = %(url)s AND id <> %(id)s
           UNION ALL SELECT f.id, f.enabled, f.disabled_reason
                       FROM feed_url_history h JOIN feeds f ON f.id = h.feed_id
                      WHERE h.url = %(url)s AND h.feed_id <> %(id)s
           LIMIT 1""", {"url": new_url, "id": result.feed_id}).fetchone()
    if other is not None:
        # That feed's URL (or one it had) is taken: one feed per URL. If that feed is not
        # polled, say so: resuming it is the user's call (they may have removed it on purpose).
        has = "already polls" if other[1] else f"has, but does not poll ({other[2]}: `newsroom feeds resume {other[0]}`)"
        set_disabled(conn, result.feed_id, DisabledReason.MOVED, f"moved for good to {new_url}, which feed #{other[0]} {has}")
        return
    why = f"HTTP {result.http_status or '301/308'} permanent redirect on {polls[0]} polls in a row"
    conn.execute("DELETE FROM feed_url_history WHERE feed_id = %s AND url = %s", (result.feed_id, new_url))
    conn.execute(
        """INSERT INTO feed_url_history (feed_id, url, new_url, reason) VALUES (%s, %s, %s, %s)
           ON CONFLICT (url) DO NOTHING""",
        (result.feed_id, old_url, new_url, "permanent redirect (301/308)"))
    # New validators come from the new URL's server; the old ones would only confuse it.
    conn.execute(
        """UPDATE feeds SET url = %s, redirect_url = NULL, redirect_polls = 0, etag = NULL,
                            last_modified = NULL, updated_at = now()
            WHERE id = %s""", (new_url, result.feed_id))
    log.info("feed #%s moved from %s to %s (%s)", result.feed_id, old_url, new_url, why)


def set_disabled(conn: psycopg.Connection, feed_id: int, reason: DisabledReason, detail: str) -> bool:
    """Stop polling a feed, saying why; its history and articles stay. False if it was not enabled
    (a paused feed that is then removed does change: the newer reason is kept)."""
    return bool(conn.execute(
        """UPDATE feeds SET enabled = false, disabled_reason = %s, disabled_at = now(), disabled_detail = %s,
                            updated_at = now()
            WHERE id = %s AND (enabled OR disabled_reason IS DISTINCT FROM %s)""",
        (reason, detail, feed_id, reason)).rowcount)


def set_enabled(conn: psycopg.Connection, feed_id: int) -> bool:
    """Poll a disabled feed again, from now, with a clean failure streak. False if it was enabled.
    A feed the feeds file dropped becomes the user's: the file's next sync would disable it again."""
    return bool(conn.execute(
        """UPDATE feeds SET enabled = true, disabled_reason = NULL, disabled_at = NULL, disabled_detail = NULL,
                            managed_by = CASE WHEN disabled_reason = 'unlisted' THEN 'user' ELSE managed_by END,
                            consecutive_failures = 0, next_poll_at = now(), updated_at = now()
            WHERE id = %s AND NOT enabled""", (feed_id,)).rowcount)


def feed_health(conn: psycopg.Connection) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT f.id, f.name, f.url, f.enabled, f.last_status, f.last_http_status, f.last_polled_at,
                  f.last_success_at, f.last_new_article_at, f.next_poll_at, f.consecutive_failures,
                  f.last_error_class, f.last_error, f.created_at, f.tags, f.managed_by, f.outlet,
                  f.disabled_reason, f.disabled_at, f.disabled_detail, f.redirect_url, f.redirect_polls,
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


# --- the feed list as the user manages it (`newsroom feeds add/remove/pause/resume/import/export`) ----

_FEED_BY_ID = "SELECT id, url, name, enabled, disabled_reason FROM feeds WHERE id = %s"
# a URL finds the feed that has it now, or had it before it moved
_FEED_BY_URL = """SELECT id, url, name, enabled, disabled_reason FROM feeds
                   WHERE url = %(u)s OR id IN (SELECT feed_id FROM feed_url_history WHERE url = %(u)s)"""
_FEEDS_BY_NAME = "SELECT id, url, name, enabled, disabled_reason FROM feeds WHERE lower(name) = lower(%s) ORDER BY id"


def _describe(row: dict) -> str:
    state = "enabled" if row["enabled"] else row["disabled_reason"]
    return f"feed #{row['id']} {row['name']!r} ({state})"


def find_feed(conn: psycopg.Connection, ident: str) -> dict:
    """The one feed `ident` names: its id ("12" or "#12"), its URL (now, or before it moved) or
    its name (any case). NotFound when none does, UserInputError when a name fits several."""
    ident = (ident or "").strip()
    cur = conn.cursor(row_factory=dict_row)
    if ident.lstrip("#").isdigit() and len(ident) < 19:
        rows = cur.execute(_FEED_BY_ID, (int(ident.lstrip("#")),)).fetchall()
    else:
        rows = cur.execute(_FEED_BY_URL, {"u": ident}).fetchall() or cur.execute(_FEEDS_BY_NAME, (ident,)).fetchall()
    if not rows:
        raise NotFound(f"no feed is called {ident[:200]!r} (give its id, URL or name; "
                       "`newsroom feeds status` lists them)")
    if len(rows) > 1:
        raise UserInputError(f"{len(rows)} feeds are called {ident[:200]!r}: "
                             + ", ".join(f"#{r['id']} {r['url']}" for r in rows[:10]) + "; give the id or URL")
    return rows[0]


def add_feed(conn: psycopg.Connection, spec: FeedSpec) -> int:
    """Add one feed the user manages (the feeds file's sync leaves it alone). UserInputError,
    with nothing changed, when a feed already has the URL (or had it before it moved)."""
    with conn.cursor(row_factory=dict_row) as cur:
        existing = _existing(cur, clean(spec.url))
        if existing is not None:
            hint = "" if existing["enabled"] else f"; `newsroom feeds resume {existing['id']}` polls it again"
            raise UserInputError(f"{spec.url[:300]} is already {_describe(existing)}{hint}")
        row = cur.execute(
            """INSERT INTO feeds (url, name, tags, poll_interval_s, outlet, managed_by)
               VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (url) DO NOTHING RETURNING id""",
            (clean(spec.url), clean(spec.name), _clean_all(spec.tags), spec.poll_interval, clean(spec.outlet),
             FeedManager.USER)).fetchone()
        if row is None:
            raise UserInputError(f"{spec.url[:300]} was added by someone else meanwhile")
        return row["id"]


def _existing(cur: psycopg.Cursor, url: str) -> dict | None:
    return cur.execute(_FEED_BY_URL, {"u": url}).fetchone()


def import_feeds(conn: psycopg.Connection, specs: Sequence[FeedSpec]) -> dict[str, int]:
    """Add the feeds of an imported list that are not there yet, managed by the user; a feed
    already there (by URL, or an old URL) is left as it is, so importing again changes nothing."""
    counts = {"added": 0, "known": 0}
    with conn.cursor(row_factory=dict_row) as cur:
        for spec in specs:
            if _existing(cur, clean(spec.url)) is not None:
                counts["known"] += 1
                continue
            inserted = cur.execute(
                """INSERT INTO feeds (url, name, tags, poll_interval_s, outlet, managed_by)
                   VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (url) DO NOTHING""",
                (clean(spec.url), clean(spec.name), _clean_all(spec.tags), spec.poll_interval,
                 clean(spec.outlet), FeedManager.USER)).rowcount
            counts["added" if inserted else "known"] += 1
    return counts


def listed_feeds(conn: psycopg.Connection, *, include_disabled: bool = False) -> list[FeedSpec]:
    """The feed list as specs (for `feeds export`): enabled feeds, or all of them."""
    rows = conn.execute(
        """SELECT url, name, tags, poll_interval_s, outlet FROM feeds
            WHERE enabled OR %s ORDER BY id""", (include_disabled,)).fetchall()
    return [FeedSpec(url=u, name=n, tags=tuple(t), poll_interval=i, outlet=o) for u, n, t, i, o in rows]


def url_history(conn: psycopg.Connection) -> dict[int, list[dict]]:
    """Each feed's earlier URLs, oldest first: url, new_url, changed_at, reason."""
    out: dict[int, list[dict]] = {}
    for r in conn.cursor(row_factory=dict_row).execute(
            "SELECT feed_id, url, new_url, changed_at, reason FROM feed_url_history ORDER BY changed_at, url"):
        out.setdefault(r.pop("feed_id"), []).append(r)
    return out
