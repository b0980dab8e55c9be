"""Articles' stage results: the stored page, the extraction, the tagged mark (each written only
under its claim: queue.py's fence), and near-duplicate clusters (dedup.py decides, this module
fetches candidates and writes the outcome)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from pipeline import PIPELINE_VERSION
from pipeline.records import ClusterCandidate, Extraction, RawPage, StoredPage
from pipeline.states import CharsetSource
from pipeline.store.db import clean
from pipeline.store.queue import DONE, FENCE, log_stale

_STORE_PAGE_SQL = f"""UPDATE articles SET status = 'fetched', final_url = %(url)s, fetched_at = now(), {DONE}
            WHERE id = %(id)s AND {FENCE}"""  # noqa: S608 (constant fragments only)
_SAVE_EXTRACTION_SQL = f"""UPDATE articles SET
               status = 'extracted', title = coalesce(%(title)s, title), author = coalesce(%(author)s, author),
               language = %(language)s, published_at = %(published)s, published_source = %(psource)s,
               body = %(body)s, word_count = %(words)s, content_hash = %(hash)s,
               extractor_version = %(xver)s, pipeline_version = %(pver)s, extracted_at = now(),
               minhash = %(sig)s, minhash_bands = %(bands)s, cluster_id = NULL, is_original = NULL,
               {DONE}
         WHERE id = %(id)s AND {FENCE}"""  # noqa: S608 (constant fragments only)
# Not fenced here: the tag stage locks its claimed rows first (queue.holding) and marks only those.
_MARK_TAGGED_SQL = f"""UPDATE articles SET status = 'tagged', nlp_version = %s, rules_version = %s, tagged_at = now(),
                  tag_skipped = %s, priority = 0, {DONE}
            WHERE id = %s"""  # noqa: S608 (constant fragments only)


def store_page(conn: psycopg.Connection, page: RawPage, *, token: str | None = None) -> bool:
    """Keep the downloaded page and move its article to `fetched`: the bytes as served (gzip)
    with the charset decision, so a re-extraction can decode them again (with a corrected
    charset if need be). A page without `body` is kept as its text in UTF-8. False (nothing
    written) when the claim `token` was lost to another worker."""
    moved = conn.execute(
        _STORE_PAGE_SQL, {"url": clean(page.final_url), "id": page.article_id, "token": token},
    ).rowcount
    if not moved:
        log_stale("page", f"article {page.article_id}", token)
        return False
    if page.body is not None:
        data, charset, source = page.body, page.charset, page.charset_source
    else:
        data, charset, source = clean(page.html).encode("utf-8"), "utf-8", None
    conn.execute(
        """INSERT INTO raw_pages (article_id, http_status, final_url, content_type, charset, charset_source,
                                  headers, size_bytes, raw_gz, html_gz, fetched_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, now())
           ON CONFLICT (article_id) DO UPDATE SET
               http_status = EXCLUDED.http_status, final_url = EXCLUDED.final_url,
               content_type = EXCLUDED.content_type, charset = EXCLUDED.charset,
               charset_source = EXCLUDED.charset_source, headers = EXCLUDED.headers,
               size_bytes = EXCLUDED.size_bytes, raw_gz = EXCLUDED.raw_gz, html_gz = NULL, fetched_at = now()""",
        (page.article_id, page.http_status, clean(page.final_url), clean(page.content_type), clean(charset),
         source, Jsonb({clean(k): clean(v) for k, v in page.headers.items()}), len(data),
         gzip.compress(data, compresslevel=6)),
    )
    return True


def load_page(conn: psycopg.Connection, article_id: int) -> StoredPage | None:
    """The stored page of an article: its bytes as served and the charset decision, or (a row
    from before migration 0007) the decoded text. None when no page is stored (or it was pruned)."""
    row = conn.execute("SELECT raw_gz, html_gz, charset, charset_source, content_type FROM raw_pages "
                       "WHERE article_id = %s", (article_id,)).fetchone()
    if row is None:
        return None
    raw, html, charset, source, ctype = row
    return StoredPage(article_id=article_id, body=gzip.decompress(raw) if raw is not None else None,
                      html=gzip.decompress(html).decode("utf-8") if raw is None and html is not None else None,
                      charset=charset, charset_source=CharsetSource(source) if source else None, content_type=ctype)


def correct_charset(conn: psycopg.Connection, ids: Sequence[int], charset: str) -> int:
    """Record a charset chosen by hand for pages decoded wrongly (`charset` a Python codec name,
    checked by the caller); the next extraction of these articles decodes their stored bytes with
    it. Only pages that keep their bytes (since migration 0007) can be corrected. Returns how
    many pages changed."""
    return conn.execute(
        "UPDATE raw_pages SET charset = %s, charset_source = 'override' "
        "WHERE article_id = ANY(%s) AND raw_gz IS NOT NULL", (clean(charset), list(ids))).rowcount


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


def load_texts(conn: psycopg.Connection, ids: Sequence[int]) -> dict[int, tuple[str | None, str, str | None]]:
    """{id: (title, body, language)} for extracted articles."""
    rows = conn.execute("SELECT id, title, body, language FROM articles WHERE id = ANY(%s) AND body IS NOT NULL",
                        (list(ids),)).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def mark_tagged(conn: psycopg.Connection, article_id: int, *, nlp_version: str | None, rules_version: str,
                skipped: str | None = None) -> None:
    """Move an article to `tagged`. The tag stage checks its claim first (queue.holding). `skipped`:
    why it was tagged with nothing (no model for its language), kept in `tag_skipped`."""
    conn.execute(
        _MARK_TAGGED_SQL,
        (nlp_version, rules_version, clean(skipped), article_id),
    )


# --- near-duplicate clusters (dedup.py decides; ingest.cluster_articles runs the loop) -------

_CLUSTER_LOCK = 0x436C7573  # "Clus": one clustering worker at a time keeps clusters consistent


def _candidate(r) -> ClusterCandidate:
    return ClusterCandidate(id=r[0], signature=r[1], bands=tuple(r[2] or ()), published=r[3], cluster_id=r[4])


def lock_clustering(conn: psycopg.Connection) -> None:
    """Take the clustering lock for the rest of the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CLUSTER_LOCK,))


def unclustered(conn: psycopg.Connection, limit: int) -> list[ClusterCandidate]:
    """Extracted articles without a cluster, earliest published first."""
    rows = conn.execute(
        """SELECT id, minhash, minhash_bands, published_effective, NULL::bigint
             FROM articles
            WHERE cluster_id IS NULL AND body IS NOT NULL AND status IN ('extracted', 'tagged')
            ORDER BY published_effective, id
            LIMIT %s""", (limit,)).fetchall()
    return [_candidate(r) for r in rows]


def cluster_candidates(conn: psycopg.Connection, article: ClusterCandidate, window_days: int) -> list[ClusterCandidate]:
    """Clustered articles sharing a MinHash band with `article`, published within the window."""
    rows = conn.execute(
        """SELECT id, minhash, minhash_bands, published_effective, cluster_id
             FROM articles
            WHERE minhash_bands && %(bands)s AND id <> %(id)s AND cluster_id IS NOT NULL
              AND published_effective
                  BETWEEN %(t)s - make_interval(days => %(w)s) AND %(t)s + make_interval(days => %(w)s)""",
        {"bands": list(article.bands), "id": article.id, "t": article.published, "w": window_days},
    ).fetchall()
    return [_candidate(r) for r in rows]


def earliest_in_cluster(conn: psycopg.Connection, cluster_id: int):
    return conn.execute("SELECT min(published_effective) FROM articles WHERE cluster_id = %s",
                        (cluster_id,)).fetchone()[0]


def set_cluster(conn: psycopg.Connection, article_id: int, cluster_id: int, *, original: bool) -> None:
    """Put an article in a cluster (its own: cluster_id = its id); an original demotes the others."""
    if original:
        conn.execute("UPDATE articles SET is_original = false WHERE cluster_id = %s AND id <> %s",
                     (cluster_id, article_id))
    conn.execute("UPDATE articles SET cluster_id = %s, is_original = %s WHERE id = %s",
                 (cluster_id, original, article_id))


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM articles GROUP BY status").fetchall())
