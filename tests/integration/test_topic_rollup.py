"""The topic-per-day rollup (migration 0010) against a real PostgreSQL: after every kind of write
that changes what it counts (the tag stage, retag, re-extraction, clustering, pruning, deleting a
topic or articles, moving a publication date, concurrent taggers, a rollback, TRUNCATE) the
rollup (counts + deltas, and again after compaction) equals the GROUP BY over the base tables;
topic_timeline and topic_volumes read from it give what the base tables give for any period."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from localsite import rss
from test_extract_stage import STORY, _page
from test_views import build_corpus

from pipeline import ingest, queries, store
from pipeline.periods import Bucket


def assert_exact(conn) -> None:
    """The rollup says what the base tables say: with its deltas pending, and once compacted."""
    assert store.rollup.differences(conn) == []
    done = store.rollup.compact(conn)
    assert not done.skipped
    assert store.rollup.pending_deltas(conn) == 0
    assert store.rollup.differences(conn) == []
    # nothing kept at zero
    assert conn.execute("SELECT count(*) FROM topic_day_counts WHERE articles = 0 AND originals = 0").fetchone()[0] == 0
    conn.commit()


def _counts(conn) -> dict:
    """{(slug, day): (articles, originals)} as the rollup says (counts + deltas), days at 0 left out."""
    return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
        """SELECT t.slug, c.day, sum(c.articles)::int, sum(c.originals)::int
             FROM (SELECT topic_id, day, articles, originals FROM topic_day_counts
                   UNION ALL SELECT topic_id, day, articles, originals FROM topic_day_deltas) c
             JOIN topics t ON t.id = c.topic_id
            GROUP BY 1, 2 HAVING sum(c.articles) <> 0 OR sum(c.originals) <> 0""")}


# --- the stages -------------------------------------------------------------------------------

def _ingest(settings, site, feeds_file):
    """An original and its copy four hours later (clustering marks the copy), and an Idlib story."""
    a = site.add("/a.html", _page("Erdogan stands by S-400", STORY), content_type="text/html")
    b = site.add("/b.html", _page("Erdogan stands by S-400 deal", STORY + ["(Reporting by Wire Service)"],
                                  published="2019-10-01T14:00:00+00:00"), content_type="text/html")
    site.add("/f.xml", rss([(a, "Erdogan stands by S-400"), (b, "Erdogan stands by S-400 deal")]),
             content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]))
    ingest.ingest_once(s)
    return s


def test_tag_stage_clustering_retag_and_reextraction_keep_it_exact(settings, site, feeds_file, conn, run):
    s = _ingest(settings, site, feeds_file)
    # the stages compacted what they wrote
    assert store.rollup.pending_deltas(conn) == 0
    counts = _counts(conn)
    assert counts[("s400-f35-dispute", datetime(2019, 10, 1).date())] == (2, 1)  # the copy is no original
    assert_exact(conn)

    # retag: the stage replaces each article's tags (DELETE, INSERT)
    conn.execute("UPDATE article_topics SET rules_version = 'old-rules'")
    conn.commit()
    site.stop()  # re-processing needs no network
    out = ingest.reprocess(s, stages=("tag",))
    assert out["tag"]["tagged"] == 2
    assert _counts(conn) == counts
    assert_exact(conn)

    # re-extraction puts back the page's date after a hand edit moved it, and re-clusters
    conn.execute("UPDATE articles SET published_at = published_at - interval '3 days'")
    conn.commit()
    assert store.rollup.differences(conn) == []
    result = run("retag", "--stages", "extract,tag")
    assert result.exit_code == 0, result.output
    assert "extracted 2" in result.output and "duplicates 1" in result.output
    assert store.rollup.pending_deltas(conn) == 0  # the stages compacted
    assert _counts(conn) == counts
    assert_exact(conn)


def test_clustering_changing_originals_keeps_it_exact(conn):
    corpus = build_corpus(conn)
    assert_exact(conn)
    a1, a3 = corpus.ids["a1"], corpus.ids["a3"]
    # the copy becomes the original and the original a copy, as set_cluster writes it
    store.articles.set_cluster(conn, a3, a1, original=True)
    conn.commit()
    assert store.rollup.differences(conn) == []
    # leaving a cluster (a re-extraction): is_original NULL counts as an original
    conn.execute("UPDATE articles SET cluster_id = NULL, is_original = NULL WHERE id = %s", (a1,))
    conn.commit()
    assert_exact(conn)


def test_pruning_and_deleting_articles_drop_their_counts_once(conn):
    corpus = build_corpus(conn)
    before = _counts(conn)
    assert before
    with psycopg.connect(conn.info.dsn, autocommit=True) as auto:
        store.maintenance.prune(auto, raw_pages_before=datetime.now(UTC) + timedelta(days=1),
                                polls_before=datetime.now(UTC) + timedelta(days=1))
    assert _counts(conn) == before  # pruning pages and polls leaves articles and topics alone
    assert_exact(conn)
    # deleting articles (by hand, or a future retention of articles): article_topics cascade
    conn.execute("DELETE FROM articles WHERE id = ANY(%s)", ([corpus.ids["a1"], corpus.ids["a4"]],))
    conn.commit()
    assert store.rollup.differences(conn) == []
    conn.execute("DELETE FROM articles WHERE published_effective < now() - interval '5 days'")
    conn.commit()
    assert_exact(conn)
    conn.execute("DELETE FROM articles")
    conn.commit()
    assert_exact(conn)
    assert _counts(conn) == {}


def test_deleting_a_topic_and_truncating(conn):
    build_corpus(conn)
    conn.execute("UPDATE articles SET published_at = published_at + interval '1 day'")  # some deltas pending
    conn.commit()
    conn.execute("DELETE FROM topics WHERE slug = 's400-f35-dispute'")
    conn.commit()
    assert conn.execute("SELECT count(*) FROM topic_day_deltas d WHERE NOT EXISTS "
                        "(SELECT 1 FROM topics t WHERE t.id = d.topic_id)").fetchone()[0] == 0
    assert_exact(conn)
    assert "s400-f35-dispute" not in {slug for slug, _ in _counts(conn)}
    conn.execute("TRUNCATE article_topics")
    conn.commit()
    assert conn.execute("SELECT (SELECT count(*) FROM topic_day_counts) + (SELECT count(*) FROM topic_day_deltas)"
                        ).fetchone()[0] == 0
    assert_exact(conn)


def test_moving_publication_times_and_moving_tags_by_hand(conn):
    corpus = build_corpus(conn)
    a2, a4, a5 = corpus.ids["a2"], corpus.ids["a4"], corpus.ids["a5"]
    conn.execute("UPDATE articles SET published_at = published_at - interval '1 hour' WHERE id = %s", (a2,))
    conn.execute("UPDATE articles SET published_at = '2001-02-03T23:59:59+00' WHERE id = %s", (a4,))
    # without a page date the feed's date counts, then the discovery time
    conn.execute("UPDATE articles SET published_at = NULL, feed_published_at = '2010-01-01T00:30+05' WHERE id = %s",
                 (a5,))
    conn.commit()
    assert store.rollup.differences(conn) == []
    conn.execute("UPDATE articles SET feed_published_at = NULL WHERE id = %s", (a5,))
    conn.execute("UPDATE articles SET discovered_at = discovered_at - interval '9 days' WHERE id = %s", (a5,))
    conn.commit()
    assert store.rollup.differences(conn) == []
    # an article_topics row given another topic, then another article
    tid = corpus.topics["arms-trade"]
    conn.execute("UPDATE article_topics SET topic_id = %s WHERE article_id = %s AND topic_id = %s",
                 (tid, a5, corpus.topics["us-turkey-relations"]))
    conn.execute("UPDATE article_topics SET article_id = %s WHERE article_id = %s AND topic_id = %s", (a4, a5, tid))
    conn.commit()
    assert_exact(conn)


def test_a_rolled_back_transaction_leaves_nothing(conn):
    corpus = build_corpus(conn)
    assert_exact(conn)
    before = _counts(conn)
    conn.execute("DELETE FROM article_topics WHERE article_id = %s", (corpus.ids["a1"],))
    conn.execute("UPDATE articles SET published_at = '1999-01-01', is_original = false")
    conn.execute("INSERT INTO article_topics (article_id, topic_id, score, rules_version) VALUES (%s, %s, 1, 'x')",
                 (corpus.ids["a6"], corpus.topics["arms-trade"]))
    assert store.rollup.differences(conn) == []  # exact inside the transaction too
    conn.rollback()
    assert store.rollup.pending_deltas(conn) == 0
    assert _counts(conn) == before
    assert_exact(conn)


def test_a_statement_the_triggers_cannot_follow_is_found_and_rebuilt(conn):
    """One statement moving an article's date and tagging it (a writable CTE): documented in 0010
    as not followed; `differences` finds it, `rebuild` counts again."""
    corpus = build_corpus(conn)
    conn.execute("""WITH moved AS (UPDATE articles SET published_at = '2001-01-01' WHERE id = %s RETURNING id)
                    INSERT INTO article_topics (article_id, topic_id, score, rules_version)
                    SELECT id, %s, 1, 'r' FROM moved""", (corpus.ids["a6"], corpus.topics["arms-trade"]))
    conn.commit()
    assert store.rollup.differences(conn) != []
    assert store.rollup.rebuild(conn) > 0
    assert store.rollup.pending_deltas(conn) == 0
    assert_exact(conn)


# --- concurrency --------------------------------------------------------------------------------

def _articles(conn, n: int, day: str = "2019-10-01T12:00+00") -> list[int]:
    rows = conn.execute("""INSERT INTO articles (url, first_url, pipeline_version, published_at, is_original)
                           SELECT 'http://127.0.0.1/c/' || g, 'http://127.0.0.1/c/' || g, 'test', %s, g %% 2 = 0
                             FROM generate_series(1, %s) g RETURNING id""", (day, n)).fetchall()
    conn.execute("INSERT INTO topics (slug, name, rules_version) VALUES ('t1', 'T1', 'r') ON CONFLICT DO NOTHING")
    conn.commit()
    return sorted(r[0] for r in rows)


def _tag(conn, ids: list[int], slug: str = "t1") -> None:
    with conn.cursor() as cur:
        cur.executemany("""INSERT INTO article_topics (article_id, topic_id, score, rules_version)
                           SELECT %s, id, 1, 'r' FROM topics WHERE slug = %s""", [(i, slug) for i in ids])


def test_concurrent_tag_batches_for_the_same_topic_and_day_never_wait(conn, db_dsn):
    ids = _articles(conn, 40)
    with psycopg.connect(db_dsn) as one, psycopg.connect(db_dsn) as two:
        for c in (one, two):
            c.execute("SET lock_timeout = '2s'")  # a wait on the other's locks would fail the test
        _tag(one, ids[:20])
        _tag(two, ids[20:])  # same topic, same day, while one's rows are uncommitted
        two.commit()
        one.commit()
    assert conn.execute("SELECT count(*) FROM topic_day_deltas").fetchone()[0] >= 2
    assert_exact(conn)
    assert _counts(conn)[("t1", datetime(2019, 10, 1).date())] == (40, 20)


def _in_thread(fn) -> tuple[threading.Thread, list]:
    errors: list = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, errors


@pytest.mark.parametrize("first", ["tagger", "updater"])
def test_a_date_moved_while_the_article_is_tagged_is_counted_once(conn, db_dsn, first):
    """A tagger inserting the article's tags and a writer moving its date (or its original mark)
    at the same time: whichever locks the article first, the other waits, and the rollup ends
    exact (without the trigger's FOR SHARE both would read the other's old state)."""
    [aid] = _articles(conn, 1)
    with psycopg.connect(db_dsn) as tagger, psycopg.connect(db_dsn) as updater:
        def tag() -> None:
            _tag(tagger, [aid])

        def move() -> None:
            updater.execute("UPDATE articles SET published_at = '2019-12-25T08:00+00', is_original = false "
                            "WHERE id = %s", (aid,))

        if first == "tagger":
            tag()
            t, errors = _in_thread(move)
            time.sleep(0.5)
            assert t.is_alive()  # the update waits for the tagger's lock on the article
            tagger.commit()
            t.join(10)
            updater.commit()
        else:
            move()
            t, errors = _in_thread(tag)
            time.sleep(0.5)
            assert t.is_alive()  # the tagger's trigger waits to read the article as updated
            updater.commit()
            t.join(10)
            tagger.commit()
        assert not errors
    assert_exact(conn)
    assert _counts(conn) == {("t1", datetime(2019, 12, 25).date()): (1, 0)}


def test_an_article_deleted_while_it_is_tagged_is_counted_once(conn, db_dsn):
    [aid] = _articles(conn, 1)
    with psycopg.connect(db_dsn) as tagger, psycopg.connect(db_dsn) as deleter:
        _tag(tagger, [aid])
        t, errors = _in_thread(lambda: deleter.execute("DELETE FROM articles WHERE id = %s", (aid,)))
        time.sleep(0.5)
        assert t.is_alive()  # the delete waits for the tagger
        tagger.commit()
        t.join(10)
        deleter.commit()
        assert not errors
    assert_exact(conn)
    assert _counts(conn) == {}


def test_compaction_skips_when_another_compactor_is_busy(conn, db_dsn):
    ids = _articles(conn, 3)
    _tag(conn, ids)
    conn.commit()
    with psycopg.connect(db_dsn) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (store.rollup._COMPACT_LOCK,))
        assert store.rollup.compact(conn).skipped
        assert store.rollup.pending_deltas(conn) == 3  # one per INSERT statement
        other.rollback()
    done = store.rollup.compact(conn)
    assert (done.deltas, done.skipped) == (3, False)
    assert_exact(conn)


# --- the queries: the rollup's answers are the base tables' ----------------------------------

@pytest.fixture
def archive(conn):
    """300 tagged articles at random times over 120 days, some copies, three topics; compacted
    halfway, so both counts and pending deltas hold part of it."""
    rng = random.Random(5)
    conn.execute("""INSERT INTO topics (slug, name, rules_version)
                    VALUES ('alpha', 'Alpha', 'r'), ('beta', 'Beta', 'r'), ('gamma', 'Gamma', 'r')""")
    topics = [r[0] for r in conn.execute("SELECT id FROM topics ORDER BY id")]
    end = datetime(2020, 3, 1, 5, 30, tzinfo=UTC)
    for k in range(300):
        when = end - timedelta(seconds=rng.randrange(120 * 86400))
        original = rng.choice([True, True, False, None])
        [aid] = conn.execute("""INSERT INTO articles (url, first_url, pipeline_version, published_at, is_original)
                                VALUES (%s, %s, 'test', %s, %s) RETURNING id""",
                             (f"http://127.0.0.1/r/{k}", f"http://127.0.0.1/r/{k}", when, original)).fetchone()
        for tid in rng.sample(topics, rng.choice((1, 1, 2, 3))):
            conn.execute("INSERT INTO article_topics (article_id, topic_id, score, rules_version) "
                         "VALUES (%s, %s, 1, 'r')", (aid, tid))
        if k == 150:
            conn.commit()
            store.rollup.compact(conn)
    conn.commit()
    return end


def _periods(rng: random.Random, end: datetime, n: int) -> list[tuple[datetime, datetime]]:
    out = [(end - timedelta(days=30), end), (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC)),
           (datetime(2020, 1, 1, 6, tzinfo=UTC), datetime(2020, 1, 1, 18, tzinfo=UTC)),  # inside one day
           (datetime(2020, 1, 1, 6, tzinfo=UTC), datetime(2020, 1, 2, 3, tzinfo=UTC)),   # two part days
           (datetime(2019, 12, 31, tzinfo=UTC), datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC)),
           (datetime(2020, 1, 1, 1, tzinfo=UTC), datetime(2020, 1, 3, 23, tzinfo=UTC)),   # both read whole, less
           (datetime(2020, 1, 1, 23, tzinfo=UTC), datetime(2020, 1, 2, 1, tzinfo=UTC)),
           (end - timedelta(days=7), end - timedelta(hours=2))]  # the last day less what is dated later
    for _ in range(n):
        lo = end - timedelta(seconds=rng.randrange(130 * 86400))
        hi = lo + timedelta(seconds=rng.randrange(1, 100 * 86400))
        if rng.random() < 0.3:  # midnight edges
            lo = lo.replace(hour=0, minute=0, second=0, microsecond=0)
        out.append((lo, hi))
    return out


def _volumes(rows):
    return [{k: r[k] for k in ("slug", "name", "articles", "originals", "previous")} for r in rows]


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata"])
def test_timeline_and_volumes_equal_the_base_tables_for_any_period(conn, archive, timezone):
    conn.execute("SELECT set_config('TimeZone', %s, false)", (timezone,))
    assert store.rollup.pending_deltas(conn) > 0  # part of it still in deltas
    rng = random.Random(9)
    for since, until in _periods(rng, archive, 25):
        for bucket in Bucket:
            new = queries.topic_timeline(conn, since, until=until, bucket=bucket)
            old = queries._topic_timeline_from_articles(conn, since, until, None, bucket.value, None)
            assert new == old, (since, until, bucket)
        topic = queries.resolve_topic(conn, "beta")["id"]
        assert queries.topic_timeline(conn, since, until=until, topic="beta") == \
            queries._topic_timeline_from_articles(conn, since, until, topic, "day", None)
        assert _volumes(queries.topic_volumes(conn, since, until=until)) == \
            queries._topic_volumes_from_articles(conn, since, until, since - (until - since), None)
    store.rollup.compact(conn)
    since, until = archive - timedelta(days=45, hours=3), archive
    assert queries.topic_timeline(conn, since, until=until, bucket=Bucket.WEEK) == \
        queries._topic_timeline_from_articles(conn, since, until, None, "week", None)
    assert _volumes(queries.topic_volumes(conn, since, until=until)) == \
        queries._topic_volumes_from_articles(conn, since, until, since - (until - since), None)


def test_a_scope_still_counts_from_the_base_tables(conn):
    corpus = build_corpus(conn)
    since = corpus.now - timedelta(days=60)
    scoped = queries.topic_timeline(conn, since, scope=queries.Scope(outlet="Al-Monitor"))
    assert {r["slug"] for r in scoped} == {"s400-f35-dispute", "russia-turkey-defence-cooperation"}
    assert sum(r["articles"] for r in scoped) < sum(r["articles"] for r in queries.topic_timeline(conn, since))
    # and the rollup is never read for it: emptied, the scoped answer stays
    conn.execute("ALTER TABLE topic_day_counts DISABLE TRIGGER ALL")
    conn.execute("DELETE FROM topic_day_counts")
    assert queries.topic_timeline(conn, since, scope=queries.Scope(outlet="Al-Monitor")) == scoped
    conn.rollback()


def test_split_pieces():
    d = datetime(2020, 1, 1, tzinfo=UTC)
    h, day = timedelta(hours=1), timedelta(days=1)
    assert queries._split(d, d + 3 * day) == queries._Split((d.date(), (d + 3 * day).date()), [])
    # a part day is read as its smaller part: the piece inside, or the whole day less the piece outside
    s = queries._split(d + 5 * h, d + 2 * day + h)
    assert s.days == (d.date(), (d + 2 * day).date())
    assert s.edges == [(d, d + 5 * h, -1), (d + 2 * day, d + 2 * day + h, 1)]
    s = queries._split(d + 17 * h, d + 2 * day + 20 * h)  # a period ending "now", late in the day
    assert s.days == ((d + day).date(), (d + 3 * day).date())
    assert s.edges == [(d + 17 * h, d + day, 1), (d + 2 * day + 20 * h, d + 3 * day, -1)]
    assert queries._split(d + h, d + 2 * h) == queries._Split(None, [(d + h, d + 2 * h, 1)])
    # topic_volumes: where the periods meet (since), each reads its own piece, read as one scan
    p = queries._rollup_params(d + 5 * h, (d - 3 * day + 5 * h, d + 5 * h), (d + 5 * h, d + 3 * day + 5 * h))
    assert list(zip(p["day_from"], p["day_to"], strict=True)) == [((d - 3 * day).date(), d.date()),
                                                                  ((d + day).date(), (d + 3 * day).date())]
    assert (p["e1_lo"], p["e1_hi"], p["e1_sign"]) == (d - 3 * day, d - 3 * day + 5 * h, -1)
    assert (p["e2_lo"], p["e2_hi"], p["e2_sign"]) == (d, d + day, 1)
    assert (p["e3_lo"], p["e3_hi"], p["e3_sign"]) == (d + 3 * day, d + 3 * day + 5 * h, 1)
    assert p["e4_lo"] is None
