"""0010 on a database built by the migrations before it, with tagged articles in it: the rollup is
filled from the base tables (no deltas), its triggers keep it exact from then on, and a second
migrate applies nothing."""

from datetime import date

import psycopg
from sqltree import sql_before

from pipeline import store


def _at_0009(dsn, tmp_path):
    root = sql_before("0010", tmp_path)
    c = psycopg.connect(dsn, autocommit=True)
    assert store.migrations.migrate(c, root)[-1] == "0009_places.sql"
    return c


def _stored(c):
    c.execute("INSERT INTO topics (slug, name, rules_version) VALUES ('war', 'War', 'r1'), ('trade', 'Trade', 'r1'), "
              "('quiet', 'Quiet', 'r1')")
    # published_at, else the feed's date, else the discovery time; originals, copies, not clustered
    c.execute("""INSERT INTO articles (url, first_url, pipeline_version, published_at, feed_published_at,
                                       discovered_at, is_original)
                 VALUES ('http://127.0.0.1/1', 'http://127.0.0.1/1', 'old', '2019-10-01T23:59:59+00', NULL,
                         '2019-10-05T00:00+00', true),
                        ('http://127.0.0.1/2', 'http://127.0.0.1/2', 'old', '2019-10-02T00:00:00+00', NULL,
                         '2019-10-05T00:00+00', false),
                        ('http://127.0.0.1/3', 'http://127.0.0.1/3', 'old', NULL, '2019-10-02T01:00+03',
                         '2019-10-05T00:00+00', NULL),
                        ('http://127.0.0.1/4', 'http://127.0.0.1/4', 'old', NULL, NULL, '2019-10-03T12:00+00', true),
                        ('http://127.0.0.1/5', 'http://127.0.0.1/5', 'old', '2019-10-03T12:00+00', NULL,
                         '2019-10-05T00:00+00', NULL)""")
    c.execute("""INSERT INTO article_topics (article_id, topic_id, score, rules_version)
                 SELECT a.id, t.id, 1, 'r1' FROM articles a, topics t
                  WHERE t.slug = 'war' OR (t.slug = 'trade' AND a.url IN ('http://127.0.0.1/2', 'http://127.0.0.1/4'))""")


def test_0010_fills_the_rollup_from_the_tagged_articles(empty_db_dsn, tmp_path):
    with _at_0009(empty_db_dsn, tmp_path) as c:
        _stored(c)
        assert store.migrations.migrate(c)[0] == "0010_topic_rollup.sql"  # and any later ones
        rows = c.execute("""SELECT t.slug, r.day, r.articles, r.originals FROM topic_day_counts r
                              JOIN topics t ON t.id = r.topic_id ORDER BY 1, 2""").fetchall()
        assert rows == [
            ("trade", date(2019, 10, 2), 1, 0),
            ("trade", date(2019, 10, 3), 1, 1),
            ("war", date(2019, 10, 1), 2, 2),   # 1 at 23:59:59 UTC; 3 by its feed date (01:00+03)
            ("war", date(2019, 10, 2), 1, 0),   # 2, a copy
            ("war", date(2019, 10, 3), 2, 2),   # 4 by its discovery time; 5 not clustered
        ]
        assert c.execute("SELECT count(*) FROM topic_day_deltas").fetchone()[0] == 0
        assert store.rollup.differences(c) == []
        # the triggers are there: a new tag and a moved date keep it exact
        c.execute("""INSERT INTO article_topics (article_id, topic_id, score, rules_version)
                     SELECT min(a.id), t.id, 1, 'r1' FROM articles a, topics t WHERE t.slug = 'quiet' GROUP BY t.id""")
        c.execute("UPDATE articles SET published_at = '2020-01-01' WHERE url = 'http://127.0.0.1/2'")
        assert store.rollup.differences(c) == []
        assert store.migrations.migrate(c) == []  # applied once


def test_0010_on_an_empty_database(empty_db_dsn, tmp_path):
    with _at_0009(empty_db_dsn, tmp_path) as c:
        assert store.migrations.migrate(c)[0] == "0010_topic_rollup.sql"  # and any later ones
        assert c.execute("SELECT count(*) FROM topic_day_counts").fetchone()[0] == 0
        assert store.rollup.compact(c).deltas == 0
