"""0007 on a database built by the migrations before it: raw pages stored the old way (only the
decoded text, html_gz) stay valid and are still extracted; a page fetched again is stored the new
way (the bytes as served, no html_gz); a row with neither is refused; old rows can be pruned."""

import gzip
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqltree import sql_before

from pipeline import ingest, store
from pipeline.records import RawPage

TEXT = ("<html><head><title>Old page</title></head><body><article><h1>Old page</h1>"
        + "".join(f"<p>Paragraph {i}: the old café stored before 0007 still extracts with its naïve text, as "
                  "every page kept the old way must after the migration.</p>" for i in range(6))
        + "</article></body></html>")


def _old_schema(dsn: str, tmp_path) -> None:
    root = sql_before("0007", tmp_path)
    with psycopg.connect(dsn, autocommit=True) as c:
        assert store.migrations.migrate(c, root)


def _old_row(c, n: int, status: str = "fetched", age_days: int = 0) -> int:
    aid = c.execute("INSERT INTO articles (url, first_url, pipeline_version, status) VALUES (%s, %s, 'old', %s) "
                    "RETURNING id", (f"http://127.0.0.1/{n}", f"http://127.0.0.1/{n}", status)).fetchone()[0]
    data = TEXT.encode("utf-8")
    c.execute("INSERT INTO raw_pages (article_id, http_status, final_url, content_type, charset, size_bytes, html_gz, "
              "fetched_at) VALUES (%s, 200, %s, 'text/html', 'iso8859-1', %s, %s, now() - make_interval(days => %s))",
              (aid, f"http://127.0.0.1/{n}", len(data), gzip.compress(data), age_days))
    return aid


@pytest.fixture
def old_db(empty_db_dsn, tmp_path) -> str:
    _old_schema(empty_db_dsn, tmp_path)
    return empty_db_dsn


def test_old_pages_stay_readable_and_a_new_fetch_stores_the_new_way(old_db, tmp_path):
    with psycopg.connect(old_db) as c:
        old = _old_row(c, 1)
        refetched = _old_row(c, 2)
        stale = _old_row(c, 3, status="tagged", age_days=400)
        before = c.execute("SELECT * FROM raw_pages ORDER BY article_id").fetchall()
    with psycopg.connect(old_db, autocommit=True) as c:
        assert store.migrations.migrate(c)[0] == "0007_retention.sql"
    with psycopg.connect(old_db) as c:
        cols = [d.name for d in c.execute("SELECT * FROM raw_pages LIMIT 0").description]
        rows = c.execute("SELECT * FROM raw_pages ORDER BY article_id").fetchall()
        assert [r[:len(before[0])] for r in rows] == before  # the old columns untouched
        assert all(r[cols.index("raw_gz")] is None and r[cols.index("charset_source")] is None for r in rows)

        page = store.articles.load_page(c, old)
        assert page.body is None and page.html == TEXT and ingest.page_text(page) == TEXT

        # fetched again: the bytes as served, the decision, and no html_gz any more
        c.execute("UPDATE articles SET status = 'discovered' WHERE id = %s", (refetched,))
        body = TEXT.encode("cp1252")
        assert store.articles.store_page(c, RawPage(article_id=refetched, http_status=200, final_url="http://x/",
                                                    html="", body=body, charset="cp1252", charset_source="meta"))
        row = c.execute("SELECT raw_gz, html_gz, charset, charset_source, size_bytes FROM raw_pages "
                        "WHERE article_id = %s", (refetched,)).fetchone()
        assert (gzip.decompress(row[0]), row[1], row[2], row[3], row[4]) == (body, None, "cp1252", "meta", len(body))
        assert ingest.page_text(store.articles.load_page(c, refetched)) == TEXT

        # neither the bytes nor the text: refused
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("UPDATE raw_pages SET html_gz = NULL WHERE article_id = %s", (old,))
        c.rollback()
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("UPDATE raw_pages SET charset_source = 'guess' WHERE article_id = %s", (refetched,))
        c.rollback()

    # the extract stage reads an old row as before
    from pipeline.config import Settings

    settings = Settings(database_url=old_db, state_dir=tmp_path / "state")
    result = ingest.extract_pages(settings, ids=[old])
    assert result.counts["extracted"] == 1, result
    with psycopg.connect(old_db, autocommit=True) as c:
        assert "naïve text" in c.execute("SELECT body FROM articles WHERE id = %s", (old,)).fetchone()[0]
        # and an old row is pruned like a new one
        now = datetime.now(UTC)
        done = store.maintenance.prune(c, raw_pages_before=now - timedelta(days=90), polls_before=None)
        assert (done.raw_pages, done.raw_page_bytes) == (1, len(gzip.compress(TEXT.encode())))
        assert {r[0] for r in c.execute("SELECT article_id FROM raw_pages")} == {old, refetched}
        assert c.execute("SELECT count(*) FROM articles WHERE id = %s", (stale,)).fetchone()[0] == 1
