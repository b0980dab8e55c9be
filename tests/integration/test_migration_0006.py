"""0006 on a database built by the migrations before it: every feed so far came from the file,
the disabled ones were dropped from it; articles already stored get their site from
`store.migrate` (the public suffix list is not in SQL), a batch at a time, once."""


import psycopg
from sqltree import sql_before

from pipeline import store


def test_0006_on_an_older_database(empty_db_dsn, tmp_path):
    root = sql_before("0006", tmp_path)
    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        assert store.migrations.migrate(c, root)[-1] == "0005_wikidata_corrections.sql"
        c.execute("INSERT INTO feeds (url, name) VALUES ('https://a.example/rss', 'A')")
        c.execute("INSERT INTO feeds (url, name, enabled) VALUES ('https://b.example/rss', 'B', false)")
        for url in ["https://www.bbc.co.uk/news/1", "https://news.example.com/x", "http://127.0.0.1:8/a"]:
            c.execute("INSERT INTO articles (url, first_url, pipeline_version) VALUES (%s, %s, 'old')", (url, url))

        applied = store.migrate(c)
        assert applied[0] == "0006_feeds_as_data.sql"
        assert c.execute("SELECT name, enabled, disabled_reason, managed_by FROM feeds ORDER BY id").fetchall() == [
            ("A", True, None, "file"), ("B", False, "unlisted", "file")]
        assert [r[0] for r in c.execute("SELECT site FROM articles ORDER BY id")] == [
            "bbc.co.uk", "example.com", "127.0.0.1"]
        # done once: nothing is left for the next migrate to fill
        assert store.feeds.fill_sites(c) == 0
