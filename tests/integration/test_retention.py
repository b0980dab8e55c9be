"""Retention against a real PostgreSQL: pages are stored as served with the charset decision and
re-extracted from those bytes (with a corrected charset when the fetch decided wrongly);
`newsroom prune` deletes old raw pages and polls only, in batches, and a dry run changes nothing."""

import gzip
from dataclasses import replace

import psycopg
import pytest
from click.testing import CliRunner

from pipeline import ingest, store
from pipeline.cli import main
from pipeline.records import FeedEntry, FeedSpec, RawPage

PARAGRAPHS = [
    "The mayor of Zürich opened a new café beside the old station on Tuesday, saying the naïve façade of "
    "the building had been restored with the help of local craftsmen and a grant from the canton.",
    "Visitors queued for an hour to see the restored hall, where the original tiles from the last century "
    "had been cleaned and the clock above the platform was working again for the first time in decades.",
    "Officials said the project cost more than four million francs and took three years, and that the "
    "café would stay open late on weekends to serve travellers on the last trains to Geneva and Basel.",
    "Critics said the money should have gone to housing, but most residents who spoke to reporters said "
    "they were glad to see the building used again after standing empty since the railway moved out.",
]


def _html(charset_meta: str | None = None, extra: str = "") -> str:
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    ps = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return (f"<!doctype html><html lang=\"en\"><head>{meta}<title>Zürich station café opens</title>"
            f'<meta property="article:published_time" content="2019-10-01T10:00:00+00:00"></head><body>'
            f"<article><h1>Zürich station café opens</h1>{ps}{extra}</article></body></html>")


def _articles(conn, urls: list[str]) -> list[int]:
    store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/feed.xml", name="Feed")], disable_missing=False)
    fid = conn.execute("SELECT id FROM feeds").fetchone()[0]
    ids = store.feeds.upsert_entries(conn, fid, [FeedEntry(url=u, entry_url=u, guid=u) for u in urls])
    conn.commit()
    return ids


def _raw(conn, aid: int) -> tuple:
    row = conn.execute("SELECT raw_gz, html_gz, charset, charset_source, size_bytes FROM raw_pages "
                       "WHERE article_id = %s", (aid,)).fetchone()
    return (gzip.decompress(row[0]) if row[0] is not None else None, *row[1:])


def test_pages_are_stored_as_served_with_the_decision(settings, site, conn):
    limit = 200_000
    served = {
        # the header says UTF-8, the bytes are Windows-1252: a detector's guess (not always right:
        # the stored bytes let a correction fix it, see the next test)
        "/lying.html": (_html().encode("cp1252"), {"Content-Type": "text/html; charset=utf-8"}, None, "detected"),
        # <meta> says UTF-8, the header Windows-1252 (and the bytes are Windows-1252)
        "/disagree.html": (_html("utf-8").encode("cp1252"), {"Content-Type": "text/html; charset=windows-1252"},
                           "cp1252", "header"),
        "/meta.html": (_html("windows-1252").encode("cp1252"), {"Content-Type": "text/html"}, "cp1252", "meta"),
        # invalid bytes in a page declared UTF-8, and a stray NUL
        "/invalid.html": (_html("utf-8", "<p>bad \xff\xfe bytes \x00 here</p>").encode("latin-1", "replace")
                          .replace(b"\xc3\xbc", b"\xc3\x28"), {"Content-Type": "text/html; charset=utf-8"}, None, None),
        # exactly at the body limit
        "/huge.html": (None, {"Content-Type": "text/html; charset=utf-8"}, "utf-8", "header"),
    }
    head = _html().encode("utf-8")
    served["/huge.html"] = (head[:-14] + b"<!--" + b"x" * (limit - len(head) - 7) + b"-->" + head[-14:],
                            *served["/huge.html"][1:])
    assert len(served["/huge.html"][0]) == limit
    # gzip on the wire: the bytes kept are the page after Content-Encoding
    gz_body = _html("utf-8").encode("utf-8")
    site.add("/gz.html", gzip.compress(gz_body), headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
    for path, (body, headers, _, _) in served.items():
        site.add(path, body, headers=headers)
    site.add("/over.html", served["/huge.html"][0] + b" ", content_type="text/html")
    urls = [site.url(p) for p in served] + [site.url("/gz.html"), site.url("/over.html")]
    ids = dict(zip(urls, _articles(conn, urls), strict=True))
    result = ingest.fetch_pages(replace(settings, max_body_bytes=limit))
    assert result.counts["fetched"] == len(served) + 1, result

    for path, (body, _, charset, source) in served.items():
        raw, html_gz, got_charset, got_source, size = _raw(conn, ids[site.url(path)])
        assert raw == body and html_gz is None and size == len(body), path
        if charset:
            assert (got_charset, got_source) == (charset, source), path
        else:
            assert got_charset not in (None, "utf-8") and got_source in ("detected", "fallback"), path
    raw, html_gz, charset, source, _ = _raw(conn, ids[site.url("/gz.html")])
    assert raw == gz_body and (charset, source) == ("utf-8", "meta")
    assert conn.execute("SELECT count(*) FROM raw_pages WHERE article_id = %s",
                        (ids[site.url("/over.html")],)).fetchone()[0] == 0

    # re-extraction decodes the stored bytes with the recorded decision: the right text
    extracted = ingest.extract_pages(settings)
    assert extracted.counts["extracted"] >= len(served), extracted
    bodies = dict(conn.execute("SELECT url, body FROM articles WHERE body IS NOT NULL").fetchall())
    for path in ("/disagree.html", "/meta.html", "/huge.html", "/gz.html"):
        assert "naïve façade" in bodies[site.url(path)], path
    assert "\x00" not in "".join(bodies.values())


def test_a_wrong_charset_is_corrected_and_the_page_re_extracted_from_its_bytes(settings, site, conn):
    # windows-1251 is a real charset and every byte decodes in it: the fetch believes the header
    url = site.add("/cyrillic.html", _html().encode("cp1252"), content_type="text/html; charset=windows-1251")
    [aid] = _articles(conn, [url])
    ingest.fetch_pages(settings)
    ingest.extract_pages(settings)
    body = conn.execute("SELECT body FROM articles WHERE id = %s", (aid,)).fetchone()[0]
    assert "café" not in body and "cafй" in body
    assert _raw(conn, aid)[2:4] == ("cp1251", "header")

    out = ingest.reprocess(settings, stages=("extract",), ids=[aid], charset="windows-1252")
    assert out["charset"] == {"corrected": 1} and out["extract"]["extracted"] == 1
    body = conn.execute("SELECT body FROM articles WHERE id = %s", (aid,)).fetchone()[0]
    assert "naïve façade" in body and "Zürich" in body
    assert _raw(conn, aid)[2:4] == ("cp1252", "override")
    assert site.hits("/cyrillic.html") and len(site.hits("/cyrillic.html")) == 1  # no second download

    from pipeline.errors import UserInputError

    with pytest.raises(UserInputError, match="not a charset"):
        ingest.reprocess(settings, stages=("extract",), ids=[aid], charset="base64")
    with pytest.raises(UserInputError, match="extract stage"):
        ingest.reprocess(settings, stages=("tag",), ids=[aid], charset="utf-8")
    with pytest.raises(UserInputError, match="--id"):  # never every stored page at once
        ingest.reprocess(settings, stages=("extract",), charset="utf-8")
    out = CliRunner().invoke(main, ["retag", "--stages", "extract", "--charset", "utf-7", "--id", str(aid)],
                             env={"NEWSROOM_DATABASE_URL": settings.database_url})
    assert out.exit_code == 2 and "utf-7" in out.output and out.output.strip().count("\n") == 0


# --- prune -----------------------------------------------------------------------------------

OLD = "100 days"


def _world(conn) -> dict[str, int]:
    """Six articles with pages: old ones past extraction (go), old ones still needing theirs, or
    claimed right now (stay), new ones (stay); one with entities and topics; old and new polls."""
    urls = [f"http://127.0.0.1/a/{n}" for n in range(6)]
    ids = _articles(conn, urls)
    names = ["tagged_old", "extracted_old", "failed_old", "fetched_old", "tagged_new", "claimed_old"]
    by = dict(zip(names, ids, strict=True))
    for aid in ids:
        body = _html().encode("cp1252")
        store.articles.store_page(conn, RawPage(article_id=aid, http_status=200, final_url=urls[0], html="",
                                                body=body, charset="cp1252", charset_source="header"))
    conn.execute("UPDATE articles SET status = 'tagged', body = 'text' WHERE id = ANY(%s)",
                 ([by["tagged_old"], by["tagged_new"], by["claimed_old"]],))
    conn.execute("UPDATE articles SET status = 'extracted', body = 'text' WHERE id = %s", (by["extracted_old"],))
    conn.execute("UPDATE articles SET status = 'failed', failed_stage = 'extract', last_error = 'no_body: x' "
                 "WHERE id = %s", (by["failed_old"],))
    conn.execute("UPDATE articles SET claimed_until = now() + interval '1 minute' WHERE id = %s", (by["claimed_old"],))
    conn.execute("UPDATE raw_pages SET fetched_at = now() - %s::interval WHERE article_id <> %s", (OLD, by["tagged_new"]))
    e = conn.execute("INSERT INTO entities (key, name, label) VALUES ('name:zurich', 'Zürich', 'GPE') "
                     "RETURNING id").fetchone()[0]
    conn.execute("INSERT INTO article_entities VALUES (%s, 0, 6, %s, 'Zürich', 'GPE', 'm')", (by["tagged_old"], e))
    t = conn.execute("INSERT INTO topics (slug, name, rules_version) VALUES ('swiss', 'Swiss', 'r') "
                     "RETURNING id").fetchone()[0]
    conn.execute("INSERT INTO article_topics (article_id, topic_id, score, rules_version) VALUES (%s, %s, 1, 'r')",
                 (by["tagged_old"], t))
    fid = conn.execute("SELECT id FROM feeds").fetchone()[0]
    for days in (200, 190, 181, 10, 0):
        conn.execute("INSERT INTO feed_polls (feed_id, started_at, finished_at, outcome, entries_seen) "
                     "VALUES (%s, now() - make_interval(days => %s), now() - make_interval(days => %s), 'ok', 3)",
                     (fid, days, days))
    conn.commit()
    return by


def _kept(conn) -> dict[str, list]:
    """Everything prune must leave alone."""
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()  # noqa: S608 (test constants)
            for t in ("articles", "article_sources", "entities", "article_entities", "topics", "article_topics",
                      "feeds")}


def _cutoffs(conn):
    now = conn.execute("SELECT now()").fetchone()[0]
    from datetime import timedelta

    return now - timedelta(days=90), now - timedelta(days=180)


def test_prune_deletes_old_pages_and_polls_only_in_batches(db_dsn, conn):
    by = _world(conn)
    before = _kept(conn)
    pages, polls = _cutoffs(conn)
    with psycopg.connect(db_dsn, autocommit=True) as ac:
        dry = store.maintenance.prune(ac, raw_pages_before=pages, polls_before=polls, dry_run=True)
        assert (dry.raw_pages, dry.polls, dry.dry_run) == (3, 3, True) and dry.raw_page_bytes > 0 < dry.poll_bytes
        assert store.db.count_rows(ac, "raw_pages") == 6 and store.db.count_rows(ac, "feed_polls") == 5

        done = store.maintenance.prune(ac, raw_pages_before=pages, polls_before=polls, batch=2)
        assert done.as_dict() == {**dry.as_dict(), "dry_run": False}
        kept = {r[0] for r in ac.execute("SELECT article_id FROM raw_pages")}
        assert kept == {by["fetched_old"], by["tagged_new"], by["claimed_old"]}
        assert [r[0] for r in ac.execute("SELECT extract(day FROM now() - started_at)::int FROM feed_polls "
                                         "ORDER BY 1")] == [0, 10]
        assert _kept(ac) == before

        again = store.maintenance.prune(ac, raw_pages_before=pages, polls_before=polls)
        assert (again.raw_pages, again.raw_page_bytes, again.polls, again.poll_bytes) == (0, 0, 0, 0)
        only_polls = store.maintenance.prune(ac, raw_pages_before=None, polls_before=polls)
        assert only_polls.raw_pages == 0
    with pytest.raises(ValueError, match="autocommit"):
        store.maintenance.prune(conn, raw_pages_before=pages, polls_before=polls)


def test_vacuum_and_table_sizes(db_dsn, conn):
    _world(conn)
    with psycopg.connect(db_dsn, autocommit=True) as ac:
        assert store.maintenance.vacuum_analyze(ac) == list(store.maintenance.VACUUMED)
        sizes = {t.table: t for t in store.maintenance.table_sizes(ac)}
        with pytest.raises(ValueError, match="not a table"):
            store.maintenance.vacuum_analyze(ac, ["pg_class"])
    assert sizes["raw_pages"].rows == 6 and sizes["feed_polls"].rows == 5
    for t in sizes.values():
        assert t.total == t.heap + t.toast + t.indexes and t.total > 0, t
    with pytest.raises(ValueError, match="autocommit"):
        store.maintenance.vacuum_analyze(conn)


def _cli(db_dsn, tmp_path, *args):
    env = {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path)}
    return CliRunner().invoke(main, list(args), env=env)


def test_prune_command(db_dsn, conn, tmp_path):
    _world(conn)
    dry = _cli(db_dsn, tmp_path, "prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "raw pages older than 90d: would delete 3 (" in dry.output
    assert "feed polls older than 180d: would delete 3 (" in dry.output
    assert store.db.count_rows(conn, "raw_pages") == 6
    conn.commit()
    out = _cli(db_dsn, tmp_path, "prune", "--raw-pages-older-than", "12w", "--polls-older-than", "8d")
    assert out.exit_code == 0, out.output
    assert "raw pages older than 12w: deleted 3" in out.output and "feed polls older than 8d: deleted 4" in out.output
    again = _cli(db_dsn, tmp_path, "prune", "--raw-pages-older-than", "12w", "--polls-older-than", "8d")
    assert "deleted 0 (0 B)" in again.output
    sizes = _cli(db_dsn, tmp_path, "db", "sizes")
    assert sizes.exit_code == 0 and "raw_pages" in sizes.output and "article_entities" in sizes.output


@pytest.mark.parametrize("args", [("--raw-pages-older-than", "90x"), ("--polls-older-than", "-3d"),
                                  ("--raw-pages-older-than", "0d")])
def test_prune_refuses_a_bad_age_in_one_line(db_dsn, tmp_path, args):
    out = _cli(db_dsn, tmp_path, "prune", *args)
    assert out.exit_code == 2
    assert out.output.strip().count("\n") == 0 and args[0] in out.output and "Traceback" not in out.output


def test_a_bad_setting_is_one_line(db_dsn, tmp_path):
    out = CliRunner().invoke(main, ["prune", "--dry-run"], env={"NEWSROOM_DATABASE_URL": db_dsn,
                                                               "NEWSROOM_PRUNE_RAW_PAGES_AFTER": "soon"})
    assert out.exit_code == 2 and "NEWSROOM_PRUNE_RAW_PAGES_AFTER" in out.output


def test_prune_waits_for_articles_being_sent_back_to_extraction(db_dsn, conn):
    """Sending articles back to extraction and pruning their pages never interleave: a page is
    never pruned under an article that was just sent back to need it."""
    by = _world(conn)
    pages, _ = _cutoffs(conn)
    chosen = store.queue.select_for_reprocessing(conn, stage="extract", ids=[by["tagged_old"]])
    assert chosen == [by["tagged_old"]]  # not committed yet: the lock is held
    with psycopg.connect(db_dsn, autocommit=True) as ac:
        ac.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            store.maintenance.prune(ac, raw_pages_before=pages, polls_before=None)
        conn.commit()
        done = store.maintenance.prune(ac, raw_pages_before=pages, polls_before=None)
        assert done.raw_pages == 2  # extracted_old, failed_old: tagged_old is `fetched` again and keeps its page
        assert ac.execute("SELECT count(*) FROM raw_pages WHERE article_id = %s",
                          (by["tagged_old"],)).fetchone()[0] == 1
