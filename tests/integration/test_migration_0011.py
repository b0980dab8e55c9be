"""0011 on a database built by the migrations before it: every article keeps every value, its
search vector is stored in its row (STORAGE MAIN) rather than in TOAST, and search finds the same
rows in the same order with the same snippets."""

import psycopg
from sqltree import sql_before

from pipeline import queries, store


def _before_0011(dsn, tmp_path):
    root = sql_before("0011", tmp_path, views=True)
    c = psycopg.connect(dsn, autocommit=True)
    store.migrations.migrate(c, root)
    return c


_WORDS = ("ceasefire talks in Idlib stalled as Turkish and Russian officials met in Ankara while the S-400 "
          "delivery and sanctions dominated the agenda of ministers ").split()


def _articles(c, n=40):
    for i in range(n):
        body = " ".join(_WORDS[(i + k) % len(_WORDS)] + (f"w{k % 97}" if k % 5 == 0 else "") for k in range(600))
        c.execute("""INSERT INTO articles (url, first_url, pipeline_version, language, title, body, status,
                                           published_at)
                     VALUES (%s, %s, 'old', %s, %s, %s, 'extracted', now() - make_interval(hours => %s))""",
                  (f"http://127.0.0.1/{i}", f"http://127.0.0.1/{i}", "fr" if i % 7 == 0 else "en",
                   f"Story {i} about Idlib" if i % 3 else f"Story {i} on S-400 sanctions", body, i))


def _stored(c):
    return c.execute("SELECT id, url, title, body, language, search::text, published_effective "
                     "FROM articles ORDER BY id").fetchall()


def _storage(c):
    return c.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'articles'::regclass "
                     "AND attname = 'search'").fetchone()[0]


def test_0011_keeps_every_article_and_stores_search_vectors_in_the_row(empty_db_dsn, tmp_path):
    with _before_0011(empty_db_dsn, tmp_path) as c:
        _articles(c)
        rows = _stored(c)
        searches = {t: queries.search(c, t) for t in ("Idlib", "S-400 sanctions", '"Idlib stalled"', "Idlib -about")}
        assert _storage(c) == "x" and all(searches.values())

        assert store.migrations.migrate(c) == ["0011_search_speed.sql"]
        assert _storage(c) == "m"
        assert _stored(c) == rows
        assert {t: queries.search(c, t) for t in searches} == searches
        c.execute("INSERT INTO articles (url, first_url, pipeline_version, title, body, status) "
                  "VALUES ('http://127.0.0.1/new', 'http://127.0.0.1/new', 'new', 'Idlib late', 'Idlib', 'extracted')")
        assert queries.search(c, "late")[0]["title"] == "Idlib late"
        assert store.migrations.migrate(c) == []  # applied once
