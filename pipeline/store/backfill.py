"""Articles a backfill listed (sitemaps, URL lists): enqueued as backlog (priority 1), so the
stages take them only when no live work is due. The canonical URL is the natural key: an
article already known, from a feed or an earlier backfill, is never touched, so re-running a
backfill adds nothing and resets nothing."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from pipeline import PIPELINE_VERSION
from pipeline.records import ListedArticle
from pipeline.store.db import clean
from pipeline.urls import site_of

BATCH = 1000  # rows per statement

# No feed carried these: first_feed_id and guid stay NULL; their outlet is their site (the
# registered domain of their URL) until a feed carries one (store.feeds.upsert_entries).
_ENQUEUE_SQL = """INSERT INTO articles (url, first_url, title, feed_published_at, language, pipeline_version,
                                        priority, site)
                  SELECT u.url, u.first_url, u.title, u.published, u.language, %s, 1, u.site
                    FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
                         AS u (url, first_url, title, published, language, site)
                  ON CONFLICT (url) DO NOTHING
               RETURNING id"""


def enqueue(conn: psycopg.Connection, articles: Sequence[ListedArticle]) -> list[int]:
    """Insert the articles not yet known as `discovered` backlog; return the new ids. Known URLs
    are left exactly as they are. (Up to BATCH articles per statement; the caller commits.)"""
    new: list[int] = []
    for i in range(0, len(articles), BATCH):
        chunk = articles[i:i + BATCH]
        rows = conn.execute(
            _ENQUEUE_SQL,
            (PIPELINE_VERSION, [clean(a.url) for a in chunk], [clean(a.listed_url) for a in chunk],
             [clean(a.title) for a in chunk], [a.published for a in chunk], [clean(a.language) for a in chunk],
             [clean(site_of(a.url)) or "" for a in chunk]),
        ).fetchall()
        new += [r[0] for r in rows]
    return new


def known_urls(conn: psycopg.Connection, urls: Sequence[str]) -> set[str]:
    """Of `urls` (canonical), those already articles."""
    known: set[str] = set()
    for i in range(0, len(urls), BATCH):
        rows = conn.execute("SELECT url FROM articles WHERE url = ANY(%s)",
                            ([clean(u) for u in urls[i:i + BATCH]],)).fetchall()
        known |= {r[0] for r in rows}
    return known

