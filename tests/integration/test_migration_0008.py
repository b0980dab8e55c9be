"""0008 on a database built by the migrations before it: the articles already stored are indexed
again, each in its own language (English ones as before), with no reason recorded against them,
and the views gain `tag_skipped`."""


import psycopg
from sqltree import sql_before

from pipeline import queries, store


def test_0008_reindexes_stored_articles_in_their_language(empty_db_dsn, tmp_path):
    root = sql_before("0008", tmp_path)
    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        assert store.migrations.migrate(c, root)[-1] == "0007_retention.sql"
        rows = [("en", "Turkey's elections", "The elections were held."),
                ("fr", "Les élections en Turquie", "Les élections présidentielles ont eu lieu."),
                (None, "Elections", "The elections")]
        for i, (language, title, body) in enumerate(rows):
            c.execute("INSERT INTO articles (url, first_url, pipeline_version, language, title, body, status) "
                      "VALUES (%s, %s, 'old', %s, %s, %s, 'tagged')",
                      (f"http://127.0.0.1/{i}", f"http://127.0.0.1/{i}", language, title, body))
        before = dict(c.execute("SELECT language, search::text FROM articles").fetchall())
        assert "'presidentiell'" in before["fr"]  # English stemming of French text, before 0008

        assert store.migrations.migrate(c)[0] == "0008_languages.sql"  # then the later ones
        after = dict(c.execute("SELECT language, search::text FROM articles").fetchall())
        assert after["en"] == before["en"]  # English articles are indexed exactly as before
        assert "'presidentiel'" in after["fr"] and "'en'" not in after["fr"]  # French stemming, stop words
        assert "'the'" in after[None]  # no language: simple
        assert c.execute("SELECT count(*) FROM articles WHERE tag_skipped IS NOT NULL").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM v_articles WHERE tag_skipped IS NULL").fetchone()[0] == 3
        assert c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'articles_search_idx'"
                         ).fetchone()[0].endswith("USING gin (search)")
    with psycopg.connect(empty_db_dsn) as c:
        # stemmed: "élection" finds "elections" in English and French; without a language, the word as written
        assert {r["language"] for r in queries.search(c, "élection")} == {"en", "fr"}
        assert len(queries.search(c, "elections")) == 3
        assert [r["language"] for r in queries.search(c, "élection", language="fr")] == ["fr"]
